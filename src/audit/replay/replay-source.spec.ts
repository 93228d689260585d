import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer } from '../audit-entry';
import { AUDIT_EVENTS, formatEventLine } from '../sinks';
import { readReplaySource } from './replay-source';

// Promise 3: a drop that cannot be avoided carries the entry on its audit.dropped line; replay
// takes it from there like from an audit.buffered line.
describe('readReplaySource', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'replay-source-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('takes the entry of an audit.dropped line, and skips a drop line that names none', async () => {
    const record = new AuditEntryNormalizer([], 64 * 1024).normalize({ action: 'nda_created', entityId: 'dropped-1' }).record;
    const file = join(dir, 'export.log');
    await writeFile(
      file,
      [
        formatEventLine(AUDIT_EVENTS.dropped, 'error', { auditId: record.id, reason: 'spool_timeout', entry: record }),
        formatEventLine(AUDIT_EVENTS.dropped, 'error', { reason: 'spool_bad_checksum', file: 'audit-1.ndjson', line: 3 }),
      ].join('\n') + '\n',
    );
    expect(await readReplaySource([file])).toEqual({ records: [record], duplicates: 0, rejected: [], skipped: 1 });
  });
});
