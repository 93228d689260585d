import { rm } from 'node:fs/promises';
import { AuditEntryNormalizer } from './audit-entry';
import { RingBuffer } from './ring-buffer';
import { type BufferedEntry } from './audit-buffer';
import { AuditFallback } from './audit-fallback';
import { type AuditReporter, type ConsoleSink } from './sinks';
import { FileSpool, nodeSpoolFiles } from './spool';
import { boundedFiles } from './spool/bounded-files';
import { leftoverDir } from '../../test/support/leftovers';

// diskTimeouts counts each hung call once, where it was made (docs/FAILURES.md, "One gate per
// disk"): a spool replay refused the disk because another user's call on it hung (the quarantine's
// fsync, the chain memory's write) made no call of its own, and is not counted again.

const TIMEOUT_MS = 200;

describe('AuditFallback.replay on a disk another user hung', () => {
  let dir: string;
  let release: () => void = () => undefined;
  let spool: FileSpool | undefined;

  beforeEach(async () => (dir = await leftoverDir('audit-disk')));

  afterEach(async () => {
    release();
    await spool?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fails the replay without counting a disk timeout of its own', async () => {
    spool = await FileSpool.open(dir, { maxBytes: 1 << 20, segmentBytes: 1 << 16, timeoutMs: TIMEOUT_MS });
    const spooled = new AuditEntryNormalizer([], 64 * 1024).normalize({ action: 'nda_created', entityId: 'nda-1' }).record;
    expect((await spool.append([spooled])).kept).toHaveLength(1);
    const quarantine = boundedFiles(
      { ...nodeSpoolFiles, writeFile: () => new Promise<void>((resolve) => (release = resolve)) },
      TIMEOUT_MS,
      dir,
    );
    await expect(quarantine.writeFile(`${dir}/quarantine/q.ndjson`, 'x', 0o600)).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT' });
    const console = { emit: () => undefined } as unknown as ConsoleSink;
    const reporter = { entriesDropped: () => undefined } as unknown as AuditReporter;
    const buffer = new RingBuffer<BufferedEntry>({ capacity: 10, maxBytes: 1 << 20 });
    const fallback = new AuditFallback(buffer as never, spool, console, reporter, () => undefined, 1000, TIMEOUT_MS);

    const insert = jest.fn(() => Promise.resolve());
    await expect(fallback.replay(spool, insert, 10)).rejects.toMatchObject({
      code: 'AUDIT_SPOOL_READ',
      cause: { code: 'AUDIT_DISK_TIMEOUT', stalled: true },
    });
    expect({ inserted: insert.mock.calls.length, diskTimeouts: fallback.diskTimeouts, quarantine: quarantine.timeouts }).toEqual({
      inserted: 0,
      diskTimeouts: 0,
      quarantine: 1,
    });
  });
});
