import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeSpoolFiles, type SpoolFiles } from '../spool/spool-files';
import { ChainBrokenError, ChainMemory, chainMemoryFile } from './chain-memory';

const hash = (n: number) => createHash('sha256').update(`seal ${n}`).digest();
/** A chain of seals 1…n as `audit_seal` rows, each continuing the one before. */
const chain = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ seq: String(i + 1), prev_hash: i === 0 ? Buffer.alloc(32) : hash(i), hash: hash(i + 1) }));
/** A query double answering the range query from `rows`. */
const seals = (rows: { seq: string; prev_hash: Buffer; hash: Buffer }[]) =>
  jest.fn((_sql: string, [from, to]: unknown[]) =>
    Promise.resolve(rows.filter((r) => Number(r.seq) >= Number(from) && Number(r.seq) <= Number(to))),
  );
const newest = (n: number, h = hash(n)) => ({ seq: n, hash: h });

describe('ChainMemory', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'chain-memory-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('takes the first newest seal it sees as it is, then accepts seals that continue it', async () => {
    const memory = new ChainMemory('audit/audit_log', null);
    await memory.check(seals(chain(3)), 'public.audit_seal', newest(3));
    expect(memory.remembered).toEqual({ seq: 3, hash: hash(3).toString('hex') });
    await memory.check(seals(chain(7)), 'public.audit_seal', newest(7));
    expect(memory.remembered?.seq).toBe(7);
  });

  it.each([
    ['no seal at all', chain(0), null, 0, /newest seal in the database is none, older than seal 3/],
    ['an older newest seal', chain(2), newest(2), 2, /is seal 2, older than seal 3/],
    [
      'the remembered seal replaced',
      [...chain(2), { seq: '3', prev_hash: hash(2), hash: hash(99) }],
      newest(3, hash(99)),
      3,
      /seal 3 in the database is not the one/,
    ],
    ['a seal missing after it', chain(5).filter((r) => r.seq !== '4'), newest(5), 5, /seal 4 is missing/],
    [
      'a seal that does not continue',
      chain(5).map((r) => (r.seq === '5' ? { ...r, prev_hash: hash(42) } : r)),
      newest(5),
      5,
      /seal 5 does not continue seal 4/,
    ],
  ])('refuses %s, and keeps what it remembers', async (_, rows, found, foundSeq, detail) => {
    const memory = new ChainMemory('audit/audit_log', null);
    await memory.check(seals(chain(3)), 'public.audit_seal', newest(3));
    const error = await memory.check(seals(rows), 'public.audit_seal', found).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ChainBrokenError);
    expect((error as ChainBrokenError).found).toMatchObject({ rememberedSeq: 3, foundSeq, detail: expect.stringMatching(detail) });
    expect(memory.remembered?.seq).toBe(3);
  });

  it('persists to a 0600 file that a new memory of the same trail loads, and refuses a file of another trail', async () => {
    const file = chainMemoryFile(dir, 'audit/audit_log') as string;
    expect(file).toMatch(/integrity\/chain-[0-9a-f]{16}\.json$/);
    const memory = new ChainMemory('audit/audit_log', file);
    memory.remember(4, hash(4));
    await memory.persist();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = new ChainMemory('audit/audit_log', file);
    await again.load();
    expect(again.remembered).toEqual({ seq: 4, hash: hash(4).toString('hex') });
    await expect(new ChainMemory('other/audit_log', file).load()).rejects.toThrow(/unreadable or of another trail/);
    await writeFile(file, '{"trail":"audit/audit_log","seq":');
    await expect(new ChainMemory('audit/audit_log', file).load()).rejects.toThrow(/unreadable/);
  });

  it('starts empty without a file, or when the file is not there yet', async () => {
    const memory = new ChainMemory('audit/audit_log', chainMemoryFile(dir, 'audit/audit_log'));
    await memory.load();
    expect(memory.remembered).toBeNull();
    expect(chainMemoryFile(null, 'audit/audit_log')).toBeNull();
  });

  it('gives a hung fsync up at its deadline (AUDIT_DISK_TIMEOUT), starts no second write beside it, and a late return renames nothing', async () => {
    const file = chainMemoryFile(dir, 'audit/audit_log') as string;
    const held: (() => void)[] = [];
    let opened = 0;
    let hang = true;
    // The disk's fsync hangs until the test lets it go.
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      open: async (path, flags, mode) => {
        const handle = await nodeSpoolFiles.open(path, flags, mode);
        opened += 1;
        if (!hang) return handle;
        return {
          ...handle,
          write: handle.write.bind(handle),
          close: handle.close.bind(handle),
          sync: () => new Promise<void>((resolve) => held.push(resolve)),
        };
      },
    };
    // A deadline the real mkdir, open and write meet even on a loaded machine; only the fsync hangs.
    const memory = new ChainMemory('audit/audit_log', file, { timeoutMs: 1000, files });
    memory.remember(4, hash(4));
    await expect(memory.persist()).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', operation: 'fsync' });
    const openedBefore = opened;
    memory.remember(5, hash(5));
    await expect(memory.persist()).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', stalled: true });
    expect(opened).toBe(openedBefore);
    hang = false;
    held.splice(0).forEach((resolve) => resolve());
    await new Promise((resolve) => setImmediate(resolve));
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await memory.persist();
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ trail: 'audit/audit_log', seq: 5, hash: hash(5).toString('hex') });
    expect((await readdir(join(dir, 'integrity'))).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('gives a hung read up at its deadline at load (never taken as empty)', async () => {
    const files: SpoolFiles = { ...nodeSpoolFiles, readFile: () => new Promise<string>(() => undefined) };
    const memory = new ChainMemory('audit/audit_log', chainMemoryFile(dir, 'audit/audit_log'), { timeoutMs: 50, files });
    await expect(memory.load()).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', operation: 'readFile' });
  });
});
