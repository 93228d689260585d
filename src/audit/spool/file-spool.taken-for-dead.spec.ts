import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type SpoolRejection } from './audit-spool';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFileHandle, type SpoolFiles } from './spool-files';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord =>
  normalizer.normalize({ action: 'nda_created', entityId: `nda-${String(n).padStart(5, '0')}`, changes: { pad: 'x'.repeat(200) } }).record;
const bound = { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024, leaseMs: 60_000 };

// A process whose lease another process found expired (an event loop stalled past `leaseMs`, a
// clock ahead on another host of a shared volume) is taken for dead while it still lives: the other
// adopts its segments (a rename), replays and deletes them. The live one still has a segment open,
// and appends to it until its heartbeat sees its record gone. An entry the spool said it kept must
// reach the table all the same (docs/DESIGN.md: an entry accepted is committed or reported), not
// land in a file already replayed and deleted. In one test process the second spool takes the first
// for dead at once (same pid under another id), which stands for the expired lease.
describe('FileSpool: a live owner taken for dead while its segment is open', () => {
  let dir: string;
  const inserted = new Set<string>();
  const insert = (records: AuditRecord[]) => Promise.resolve(void records.forEach((r) => inserted.add(r.id)));
  // A segment adopted from under a replay is reported missing by its former owner: not a loss.
  const onRejected = (rejection: SpoolRejection) => void rejection;

  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-taken-')), 'audit');
    await mkdir(dir, { recursive: true });
    inserted.clear();
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  /** Both replay, twice in turn; returns the ids of the kept records that never reached the table. */
  const lostOf = async (kept: AuditRecord[], first: FileSpool, second: FileSpool) => {
    for (let round = 0; round < 2; round += 1) {
      await second.replay(insert, 100, onRejected);
      await first.replay(insert, 100, onRejected);
    }
    return kept.map((r) => r.id).filter((id) => !inserted.has(id));
  };

  it('an append after the other process replayed the open segment reaches the table', async () => {
    const first = await FileSpool.open(dir, bound);
    let second: FileSpool | undefined;
    try {
      const kept = [...(await first.append([record(0)])).kept];
      second = await FileSpool.open(dir, bound);
      expect(await second.replay(insert, 100, onRejected)).toBe(1);
      kept.push(...(await first.append([record(1), record(2)])).kept);
      kept.push(...(await first.append([record(3)])).kept);
      expect(await lostOf(kept, first, second)).toEqual([]);
    } finally {
      await second?.close();
      await first.close();
    }
  });

  it('an append whose write lands after the other process took and replayed the segment reaches the table', async () => {
    let second: FileSpool | undefined;
    let takeOver: (() => Promise<void>) | undefined;
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      open: async (path, flags, mode) => {
        const handle = await nodeSpoolFiles.open(path, flags, mode);
        const wrapped: SpoolFileHandle = {
          write: async (buffer, offset, length) => {
            const now = takeOver;
            takeOver = undefined;
            await now?.();
            return handle.write(buffer, offset, length);
          },
          read: (...args) => handle.read(...args),
          truncate: (length) => handle.truncate(length),
          sync: () => handle.sync(),
          stat: () => handle.stat(),
          close: () => handle.close(),
        };
        return wrapped;
      },
    };
    const first = await FileSpool.open(dir, { ...bound, files });
    try {
      const kept = [...(await first.append([record(0)])).kept];
      takeOver = async () => {
        second = await FileSpool.open(dir, bound);
        expect(await second.replay(insert, 100, onRejected)).toBe(1);
      };
      kept.push(...(await first.append([record(1)])).kept);
      expect(second).toBeDefined();
      expect(await lostOf(kept, first, second as FileSpool)).toEqual([]);
    } finally {
      await second?.close();
      await first.close();
    }
  });

  it('refuses the lines when the new segment is taken too, naming why', async () => {
    // Every segment this spool writes is gone from under it by the time it looks (adopted at once).
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      stat: (path) =>
        path.endsWith('.ndjson') ? Promise.reject(Object.assign(new Error('gone'), { code: 'ENOENT' })) : nodeSpoolFiles.stat(path),
    };
    const spool = await FileSpool.open(dir, { ...bound, files });
    try {
      const result = await spool.append([record(0), record(1)]);
      expect(result.kept).toEqual([]);
      expect(result.dropped).toHaveLength(2);
      expect(result.error).toMatch(
        /^spool_error: AUDIT_SPOOL_SEGMENT_TAKEN: spool segment audit-.*\.ndjson was adopted by another process while open$/,
      );
    } finally {
      await spool.close();
    }
  });
});
