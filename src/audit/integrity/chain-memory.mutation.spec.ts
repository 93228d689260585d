import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeSpoolFiles, type SpoolFileHandle, type SpoolFiles } from '../spool/spool-files';
import { ChainBrokenError, ChainMemory, chainMemoryFile } from './chain-memory';

const TRAIL = 'audit/audit_log';
const hash = (n: number) => createHash('sha256').update(`seal ${n}`).digest();
const hex = (n: number) => hash(n).toString('hex');
const chain = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ seq: String(i + 1), prev_hash: i === 0 ? Buffer.alloc(32) : hash(i), hash: hash(i + 1) }));
const seals = (rows: { seq: string; prev_hash: Buffer; hash: Buffer }[]) =>
  jest.fn((_sql: string, [from, to]: unknown[]) =>
    Promise.resolve(rows.filter((r) => Number(r.seq) >= Number(from) && Number(r.seq) <= Number(to))),
  );
const refusal = (memory: ChainMemory, rows: ReturnType<typeof chain>, newest: { seq: number; hash: Buffer } | null) =>
  memory.check(seals(rows), 'public.audit_seal', newest).then(
    () => null,
    (e: unknown) => e as ChainBrokenError,
  );

/** The real disk, with each handle's writes and closes counted, and `write` shaped by `write` (default: the real one). */
function countingFiles(
  write?: (real: SpoolFileHandle, buffer: Uint8Array, offset: number, length: number) => Promise<{ bytesWritten: number }>,
) {
  const counts = { opens: 0, writes: 0, closes: 0 };
  const files: SpoolFiles = {
    ...nodeSpoolFiles,
    open: async (path, flags, mode) => {
      const real = await nodeSpoolFiles.open(path, flags, mode);
      counts.opens += 1;
      return {
        ...real,
        sync: () => real.sync(),
        write: (buffer, offset, length) => {
          counts.writes += 1;
          if (offset + length > buffer.length) throw new RangeError(`write past the buffer: ${offset} + ${length} > ${buffer.length}`);
          return write ? write(real, buffer, offset, length) : real.write(buffer, offset, length);
        },
        close: () => {
          counts.closes += 1;
          return real.close();
        },
      };
    },
  };
  return { files, counts };
}

describe('ChainMemory, rule by rule', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'chain-memory-m-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('names the file after the trail’s SHA-256, under integrity/', () => {
    const digest = createHash('sha256').update(TRAIL).digest('hex').slice(0, 16);
    expect(chainMemoryFile('/var/spool/audit', TRAIL)).toBe(`/var/spool/audit/integrity/chain-${digest}.json`);
  });

  it('says which trail was cut and how, with what it remembers and what it found', async () => {
    const memory = new ChainMemory(TRAIL, '/nowhere/chain.json');
    memory.remember(3, hash(3));
    const error = await refusal(memory, [...chain(2), { seq: '3', prev_hash: hash(2), hash: hash(99) }], { seq: 3, hash: hash(99) });
    expect(error).toBeInstanceOf(ChainBrokenError);
    expect(error?.name).toBe('ChainBrokenError');
    const detail = `seal 3 in the database is not the one the sealer made or saw (hash ${hash(99).toString('hex').slice(0, 16)}…, not ${hex(3).slice(0, 16)}…)`;
    expect(error?.message).toBe(`the seal chain of ${TRAIL} was cut: ${detail}`);
    expect(error?.found).toEqual({
      trail: TRAIL,
      rememberedSeq: 3,
      rememberedHash: hex(3),
      foundSeq: 3,
      foundHash: hash(99).toString('hex'),
      detail,
      memoryFile: '/nowhere/chain.json',
    });
    const none = await refusal(memory, [], null);
    expect(none?.found).toMatchObject({ foundSeq: 0, foundHash: null, detail: expect.stringContaining('is none, older than seal 3') });
  });

  it('remembers nothing from an empty table, and then only newer seals', async () => {
    const memory = new ChainMemory(TRAIL, null);
    await memory.check(seals([]), 'public.audit_seal', null);
    expect(memory.remembered).toBeNull();
    memory.remember(5, hash(5));
    memory.remember(3, hash(3));
    memory.remember(5, hash(99));
    expect(memory.remembered).toEqual({ seq: 5, hash: hex(5) });
    memory.remember(6, hash(6));
    expect(memory.remembered).toEqual({ seq: 6, hash: hex(6) });
  });

  it('loads nothing without a file, and refuses a file whose hash is not exactly 64 lowercase hex digits', async () => {
    const memoryOnly = new ChainMemory(TRAIL, null);
    await memoryOnly.load();
    expect(memoryOnly.remembered).toBeNull();
    const file = join(dir, 'chain.json');
    for (const bad of [`x${hex(4)}`, `${hex(4)}x`, hex(4).toUpperCase(), hex(4).slice(1)]) {
      await writeFile(file, JSON.stringify({ trail: TRAIL, seq: 4, hash: bad }));
      await expect(new ChainMemory(TRAIL, file).load()).rejects.toThrow(
        `the chain memory ${file} is unreadable or of another trail: check the trail, then remove it (docs/RUNBOOK.md)`,
      );
    }
    for (const seq of ['4', 4.5, 2 ** 53]) {
      await writeFile(file, JSON.stringify({ trail: TRAIL, seq, hash: hex(4) }));
      await expect(new ChainMemory(TRAIL, file).load()).rejects.toThrow(/unreadable or of another trail/);
    }
  });

  it('writes nothing without a file or without a seal, and only what changed', async () => {
    const { files, counts } = countingFiles();
    await new ChainMemory(TRAIL, null, { files }).persist();
    const memoryOnly = new ChainMemory(TRAIL, null, { files });
    memoryOnly.remember(4, hash(4));
    await memoryOnly.persist();
    const file = join(dir, 'integrity', 'chain.json');
    const memory = new ChainMemory(TRAIL, file, { files });
    await memory.persist();
    expect(counts.opens).toBe(0);
    memory.remember(4, hash(4));
    await memory.persist();
    expect(counts).toEqual({ opens: 2, writes: 1, closes: 2 });
    await memory.persist();
    expect(counts.opens).toBe(2);
    const again = new ChainMemory(TRAIL, file, { files });
    await again.load();
    await again.persist();
    expect(counts.opens).toBe(2);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ trail: TRAIL, seq: 4, hash: hex(4) });
  });

  it('writes the whole file across short writes, and gives up on a write that takes no bytes, closing the file', async () => {
    const file = join(dir, 'integrity', 'chain.json');
    const short = countingFiles((real, buffer, offset, length) => real.write(buffer, offset, Math.min(length, 7)));
    const memory = new ChainMemory(TRAIL, file, { files: short.files });
    memory.remember(4, hash(4));
    await memory.persist();
    expect(short.counts.writes).toBeGreaterThan(10);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ trail: TRAIL, seq: 4, hash: hex(4) });

    const stuck = countingFiles(() => Promise.resolve({ bytesWritten: 0 }));
    const other = new ChainMemory(TRAIL, join(dir, 'integrity', 'other.json'), { files: stuck.files });
    other.remember(5, hash(5));
    await expect(other.persist()).rejects.toThrow(/could not be written \(no bytes taken\)$/);
    expect(stuck.counts).toMatchObject({ opens: 1, closes: 1 });
  });

  it('fails when a leftover temporary file cannot be removed, and not when there is none', async () => {
    const denied = Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM' });
    const files: SpoolFiles = { ...nodeSpoolFiles, unlink: () => Promise.reject(denied) };
    const memory = new ChainMemory(TRAIL, join(dir, 'integrity', 'chain.json'), { files });
    memory.remember(4, hash(4));
    await expect(memory.persist()).rejects.toBe(denied);
  });
});
