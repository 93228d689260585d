import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { RingBuffer } from './ring-buffer';
import { AuditEntryNormalizer, type AuditRecord } from './audit-entry';
import { type BufferedEntry } from './audit-buffer';
import { AuditFallback } from './audit-fallback';
import { type AuditReporter, type ConsoleSink } from './sinks';
import { type AuditSpool } from './spool';

// An evicted entry whose spool append was fsynced while the event loop was blocked past the
// deadline is spooled (its audit.spooled line), not reported dropped with spool_timeout.

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => normalizer.normalize({ action: 'nda_updated', entityId: `nda-${n}` }).record;

function blockLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

function fallbackWith(append: AuditSpool['append']) {
  const lines: { event: string; fields: Record<string, unknown> }[] = [];
  const console = {
    emit: (event: string, _level: string, fields: Record<string, unknown>) => lines.push({ event, fields }),
  } as unknown as ConsoleSink;
  const reporter = { entriesDropped: () => undefined } as unknown as AuditReporter;
  const spool = { entries: 0, append } as unknown as AuditSpool;
  const buffer = new RingBuffer<BufferedEntry>({ capacity: 1, maxBytes: 1 << 20 });
  const fallback = new AuditFallback(buffer as never, spool, console, reporter, () => undefined, 1000, 100);
  return { fallback, lines };
}

describe('AuditFallback spool appends after a stall of the event loop', () => {
  it('spools an entry whose append was answered while the loop was blocked past the deadline', async () => {
    // The append's answer waits on a real file-system call, as an fsync does.
    const { fallback, lines } = fallbackWith(async (records) => {
      await stat(tmpdir());
      return { kept: records, dropped: [] };
    });
    const spooled = fallback.toSpool([record(1)], 'evicted');
    blockLoop(400);
    await spooled;
    expect(lines.map((l) => [l.event, l.fields.reason])).toEqual([['audit.spooled', 'evicted']]);
    expect(fallback.diskTimeouts).toBe(0);
    expect(fallback.dropped).toBe(0);
  });

  it('still drops, with spool_timeout, an entry whose append has not been answered by the deadline', async () => {
    const { fallback, lines } = fallbackWith(() => new Promise(() => undefined));
    const spooled = fallback.toSpool([record(2)], 'evicted');
    blockLoop(400);
    await spooled;
    expect(lines.map((l) => [l.event, l.fields.reason])).toEqual([['audit.dropped', 'spool_timeout']]);
    expect(fallback.diskTimeouts).toBe(1);
  });
});
