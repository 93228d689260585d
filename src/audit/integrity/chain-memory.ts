import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { boundedFiles } from '../spool/bounded-files';
import { nodeSpoolFiles, type SpoolFiles } from '../spool/spool-files';

/** A seal the sealer made or saw: its number and hash (hex). */
export interface ChainPoint {
  seq: number;
  hash: string;
}

/** What the sealer found when the seals in the database no longer continue the one it remembers. */
export interface ChainBreak {
  /** `database/table` of the trail. */
  trail: string;
  rememberedSeq: number;
  rememberedHash: string;
  /** The newest seal in the database (0: none at all) and its hash. */
  foundSeq: number;
  foundHash: string | null;
  detail: string;
  /** The file the sealer remembers the chain in; null without a `spoolDir` (memory only). */
  memoryFile: string | null;
  /** Set when the newest seal could not be authenticated: `AUDIT_SEAL_UNTRUSTED` or `AUDIT_TX_BEHIND_CHAIN` (see `seal-trust.ts`). */
  code?: string;
}

/**
 * Thrown by {@link ChainMemory.check} when the database's seals do not continue the remembered
 * one: the sealer then seals nothing more.
 *
 * @example
 * try { await memory.check(query, 'public.audit_seal', newest); } catch (e) { if (e instanceof ChainBrokenError) e.found.detail; }
 */
export class ChainBrokenError extends Error {
  override readonly name = 'ChainBrokenError';

  constructor(readonly found: ChainBreak) {
    super(`the seal chain of ${found.trail} was cut: ${found.detail}`);
  }
}

/** The folder under `spoolDir` that holds the chain memory; the spool never reads it. */
const MEMORY_DIR = 'integrity';

/**
 * The file that remembers a trail's chain under `spoolDir` (one per trail), or null without one.
 *
 * @example
 * chainMemoryFile('/var/spool/audit', 'audit/audit_log'); // '/var/spool/audit/integrity/chain-3f9c0a1b2c3d4e5f.json'
 */
export function chainMemoryFile(spoolDir: string | null, trail: string): string | null {
  if (spoolDir === null) return null;
  return join(spoolDir, MEMORY_DIR, `chain-${createHash('sha256').update(trail).digest('hex').slice(0, 16)}.json`);
}

/**
 * The sealer's chain memory of `trail`: its file under `spoolDir`, whose disk gate it shares with
 * the spool and the quarantine, each call bounded by `writeTimeoutMs`.
 *
 * @example
 * const memory = chainMemoryFor('audit/audit_log', { spoolDir: '/var/spool/audit', writeTimeoutMs: 2000 });
 */
export function chainMemoryFor(trail: string, options: { spoolDir: string | null; writeTimeoutMs: number }): ChainMemory {
  return new ChainMemory(trail, chainMemoryFile(options.spoolDir, trail), {
    timeoutMs: options.writeTimeoutMs,
    disk: options.spoolDir ?? undefined,
  });
}

type Query = (sql: string, parameters: unknown[]) => Promise<unknown>;

/**
 * The newest seal the sealer made or saw in a trail, kept in memory and, with a file, across
 * restarts (0600, fsynced, replaced by an atomic rename). With nothing remembered yet (the first
 * start, or no file) the database's newest seal is taken as it is. Every file operation has the
 * spool's deadline (`timeoutMs`, the module's `writeTimeoutMs`; see `boundedFiles`): past it, a
 * `DiskTimeoutError` (`AUDIT_DISK_TIMEOUT`), and until the hung call returns every new one on that
 * disk (the spool's and the quarantine's too, with `disk`) fails at once, so a second write never
 * starts beside it; a hung write that ends late never renames its file into place.
 *
 * @example
 * const memory = new ChainMemory('audit/audit_log', chainMemoryFile(spoolDir, 'audit/audit_log'), { timeoutMs: 2000 });
 * await memory.load();
 * await memory.check(query, 'public.audit_seal', newest); // throws ChainBrokenError when cut
 */
export class ChainMemory {
  private point: ChainPoint | null = null;
  private saved: ChainPoint | null = null;

  private readonly files: SpoolFiles;

  /**
   * `timeoutMs`: each file operation's deadline (default 2000); `disk`: the directory whose disk gate
   * it shares (the `spoolDir`, with the spool and the quarantine); `files`: the file system (a seam for tests).
   */
  constructor(
    readonly trail: string,
    readonly file: string | null,
    { timeoutMs = 2000, disk, files = nodeSpoolFiles }: { timeoutMs?: number; disk?: string; files?: SpoolFiles } = {},
  ) {
    this.files = boundedFiles(files, timeoutMs, disk);
  }

  /** What is remembered, or null. */
  get remembered(): ChainPoint | null {
    return this.point;
  }

  /** Reads the file, if there is one; throws when it is there but unreadable or does not answer in time (never taken as empty). */
  async load(): Promise<void> {
    if (this.file === null) return;
    let text: string;
    try {
      text = await this.files.readFile(this.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const value = parseJson(text) as Partial<ChainPoint & { trail: string }> | undefined;
    if (value?.trail !== this.trail || !Number.isSafeInteger(value.seq) || !/^[0-9a-f]{64}$/.test(String(value.hash))) {
      throw new Error(`the chain memory ${this.file} is unreadable or of another trail: check the trail, then remove it (docs/RUNBOOK.md)`);
    }
    this.point = { seq: value.seq as number, hash: value.hash as string };
    this.saved = this.point;
  }

  /**
   * Checks that the seals in `sealTable` from the remembered one to `newest` are all there, the
   * remembered one unchanged and each continuing the one before; then remembers `newest`.
   * Throws a {@link ChainBrokenError} otherwise. Run it with `search_path` pinned.
   */
  async check(query: Query, sealTable: string, newest: { seq: number; hash: Buffer } | null): Promise<void> {
    const mine = this.point;
    if (mine) {
      const broken = (detail: string) =>
        new ChainBrokenError({
          trail: this.trail,
          rememberedSeq: mine.seq,
          rememberedHash: mine.hash,
          foundSeq: newest?.seq ?? 0,
          foundHash: newest?.hash.toString('hex') ?? null,
          detail,
          memoryFile: this.file,
        });
      if (!newest || newest.seq < mine.seq) {
        throw broken(
          `the newest seal in the database is ${newest ? `seal ${newest.seq}` : 'none'}, older than seal ${mine.seq}, which the sealer made or saw`,
        );
      }
      const rows = (await query(
        `SELECT s.seq::text AS seq, s.prev_hash, s.hash FROM ${sealTable} AS s WHERE s.seq >= $1 AND s.seq <= $2 ORDER BY s.seq`,
        [mine.seq, newest.seq],
      )) as { seq: string; prev_hash: Buffer; hash: Buffer }[];
      let previous: Buffer | null = null;
      for (let i = 0, seq = mine.seq; seq <= newest.seq; i++, seq++) {
        const row = rows[i];
        if (!row || Number(row.seq) !== seq) throw broken(`seal ${seq} is missing from the database`);
        if (previous === null && row.hash.toString('hex') !== mine.hash) {
          throw broken(
            `seal ${seq} in the database is not the one the sealer made or saw (hash ${row.hash.toString('hex').slice(0, 16)}…, not ${mine.hash.slice(0, 16)}…)`,
          );
        }
        if (previous !== null && !row.prev_hash.equals(previous)) throw broken(`seal ${seq} does not continue seal ${seq - 1}`);
        previous = row.hash;
      }
    }
    if (newest) this.remember(newest.seq, newest.hash);
  }

  /** Remembers a seal made or seen, if newer than what is remembered (in memory; see {@link persist}). */
  remember(seq: number, hash: Buffer): void {
    if (!this.point || seq > this.point.seq) this.point = { seq, hash: hash.toString('hex') };
  }

  /** Writes what is remembered to the file, if there is one and it changed: 0600, fsynced, atomically renamed into place. */
  async persist(): Promise<void> {
    const point = this.point;
    if (this.file === null || point === null || (this.saved?.seq === point.seq && this.saved.hash === point.hash)) return;
    const dir = join(this.file, '..');
    await this.files.mkdir(dir, 0o700);
    const temporary = `${this.file}.${process.pid}.tmp`;
    // What a write given up at its deadline (or a crash) left there: the file is appended to.
    await this.files.unlink(temporary).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    const handle = await this.files.open(temporary, 'a', 0o600);
    try {
      const bytes = Buffer.from(`${JSON.stringify({ trail: this.trail, ...point, savedAt: new Date().toISOString() })}\n`);
      for (let offset = 0; offset < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
        if (bytesWritten <= 0) throw new Error(`the chain memory ${temporary} could not be written (no bytes taken)`);
        offset += bytesWritten;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.files.rename(temporary, this.file);
    const directory = await this.files.open(dir, 'r');
    await directory.sync().finally(() => directory.close());
    this.saved = point;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
