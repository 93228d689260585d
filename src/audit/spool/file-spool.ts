import { join } from 'node:path';
import { type AuditRecord } from '../audit-entry';
import { type AuditSpool, type SpoolAppendResult, type SpoolRejection } from './audit-spool';
import { boundedFiles } from './bounded-files';
import { appendWhole, dropAll, packAppends, SegmentAppendError } from './segment-append';
import { adoptSegments } from './segment-adoption';
import { segmentName } from './segment-name';
import { replaySegments, type SegmentState, segmentState } from './segment-replay';
import { nodeSpoolFiles, type SpoolFileHandle, type SpoolFiles } from './spool-files';
import { SpoolOwner } from './spool-owner';

/**
 * Where and how big; `leaseMs` (default 30 s) is how long another process waits before taking this
 * one for dead; `timeoutMs` (default: none) is the deadline of each file operation (see
 * {@link boundedFiles}): the module sets it to `writeTimeoutMs`.
 *
 * @example
 * const options: FileSpoolOptions = { maxBytes: 1024 ** 3, segmentBytes: 8 * 1024 * 1024, timeoutMs: 2000 };
 */
export interface FileSpoolOptions {
  maxBytes: number;
  segmentBytes: number;
  leaseMs?: number;
  timeoutMs?: number;
  files?: SpoolFiles;
}

interface PendingAppend {
  records: AuditRecord[];
  resolve: (result: SpoolAppendResult) => void;
}

/**
 * The durable spool on local disk: append-only NDJSON segment files (0600, in a 0700 directory),
 * one checksummed record a line, fsynced before an append resolves. Concurrent appends share one
 * write and one fsync. Segments rotate by size; past `maxBytes` in all, records are refused.
 *
 * Processes may share the directory (a rolling deploy on a shared volume): each writes and
 * replays only its own segments (named by its {@link SpoolOwner} id) and adopts those of a process
 * that is gone, or that closed, and those of older versions. An older version still running
 * beside this one must not be spooling: its segments are adopted at once.
 *
 * With `timeoutMs`, no file operation is waited for longer: an append that meets a hung disk is
 * refused (`spool_error: AUDIT_DISK_TIMEOUT…`) and its segment retired, so that what the hung
 * call writes later never runs into a later append; a replay rejects with a `SpoolReadError`.
 *
 * @example
 * const spool = await FileSpool.open('/var/lib/app/audit-spool', { maxBytes: 1 << 30, segmentBytes: 8 << 20 });
 * await spool.append([record]); // { kept: [record], dropped: [] }
 */
export class FileSpool implements AuditSpool {
  private readonly segments = new Map<string, SegmentState>();
  private current: { name: string; handle: SpoolFileHandle } | undefined;
  private pending: PendingAppend[] = [];
  private drainScheduled = false;
  private chain: Promise<unknown> = Promise.resolve();
  private replaying: Promise<number> | undefined;
  private adopting: Promise<void> | undefined;
  private counter = 0;

  private constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    private readonly segmentBytes: number,
    private readonly files: SpoolFiles,
    private readonly owner: SpoolOwner,
  ) {}

  /**
   * Opens (creating if needed) the spool directory, claims a part of it, and adopts the segments
   * no live process owns; then, every third of the lease, refreshes the claim and adopts again.
   */
  static async open(dir: string, options: FileSpoolOptions): Promise<FileSpool> {
    const given = options.files ?? nodeSpoolFiles;
    const files = options.timeoutMs === undefined ? given : boundedFiles(given, options.timeoutMs);
    await files.mkdir(dir, 0o700);
    const owner = new SpoolOwner(dir, files, options.leaseMs ?? 30_000);
    await owner.beat();
    const spool = new FileSpool(dir, options.maxBytes, options.segmentBytes, files, owner);
    await spool.adopt();
    owner.start(() => spool.heartbeat());
    return spool;
  }

  get entries(): number {
    return [...this.segments.values()].reduce((sum, s) => sum + s.lines, 0);
  }

  get bytes(): number {
    return [...this.segments.values()].reduce((sum, s) => sum + s.bytes, 0);
  }

  append(records: AuditRecord[]): Promise<SpoolAppendResult> {
    if (records.length === 0) return Promise.resolve({ kept: [], dropped: [] });
    return new Promise((resolve) => {
      this.pending.push({ records, resolve });
      if (this.drainScheduled) return;
      this.drainScheduled = true;
      void this.serial(() => this.drain());
    });
  }

  async replay(
    insert: (records: AuditRecord[]) => Promise<void>,
    batchSize: number,
    onRejected: (rejection: SpoolRejection) => void,
  ): Promise<number> {
    this.replaying ??= this.runReplay(insert, batchSize, onRejected).finally(() => (this.replaying = undefined));
    return this.replaying;
  }

  /** Closes the open segment and gives up the claim: what is left is adopted by the next process. */
  async close(): Promise<void> {
    await this.serial(() => this.closeSegment());
    await this.adopting?.catch(() => undefined);
    await this.owner.release();
  }

  private async runReplay(
    insert: (records: AuditRecord[]) => Promise<void>,
    batchSize: number,
    onRejected: (r: SpoolRejection) => void,
  ): Promise<number> {
    // Appends from now on go to a new segment; the ones listed here are closed and stay so.
    await this.serial(() => this.closeSegment());
    // What cannot be adopted now (the directory unreadable) is tried again at the next heartbeat.
    await this.adopt().catch(() => undefined);
    const names = [...this.segments.keys()].filter((name) => name !== this.current?.name);
    return replaySegments(this.files, this.dir, this.segments, names, insert, batchSize, onRejected);
  }

  private async drain(): Promise<void> {
    this.drainScheduled = false;
    const batch = this.pending;
    this.pending = [];
    const { results, text, lines } = packAppends(
      batch.map((b) => b.records),
      this.maxBytes - this.bytes,
    );
    if (lines > 0) {
      const buffer = Buffer.from(text);
      let segment: { name: string; handle: SpoolFileHandle } | undefined;
      try {
        segment = await this.segment();
        const stats = this.segments.get(segment.name)!;
        await appendWhole(segment.handle, buffer, stats.bytes);
        stats.bytes += buffer.length;
        stats.lines += lines;
      } catch (error) {
        dropAll(results, `spool_error: ${(error as Error).message}`);
        if (segment && error instanceof SegmentAppendError && !error.restored) {
          // The segment now ends in part of a line, which replay will report; nothing may follow it.
          const stats = this.segments.get(segment.name)!;
          stats.bytes += buffer.length;
          stats.lines += 1;
          await this.closeSegment().catch(() => undefined);
        }
      }
    }
    batch.forEach(({ resolve }, i) => resolve(results[i]));
  }

  /** The open segment, rotated when it has reached `segmentBytes`. */
  private async segment(): Promise<{ name: string; handle: SpoolFileHandle }> {
    if (this.current && (this.segments.get(this.current.name)?.bytes ?? 0) >= this.segmentBytes) await this.closeSegment();
    if (this.current) return this.current;
    await this.owner.claim();
    const name = segmentName(String(Date.now()), this.counter++, this.owner.id);
    const handle = await this.files.open(join(this.dir, name), 'a', 0o600);
    try {
      // The new file's directory entry must survive a crash too.
      const directory = await this.files.open(this.dir, 'r');
      await directory.sync().finally(() => directory.close());
      this.segments.set(name, segmentState({ bytes: (await handle.stat()).size, lines: 0 }));
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    this.current = { name, handle };
    return this.current;
  }

  private adopt(): Promise<void> {
    this.adopting ??= adoptSegments(this.dir, this.files, this.owner, (s) => segmentName(s.time, this.counter++, this.owner.id))
      .then((adopted) => adopted.forEach((state, name) => this.segments.set(name, state)))
      .finally(() => (this.adopting = undefined));
    return this.adopting;
  }

  private async heartbeat(): Promise<void> {
    if (!(await this.owner.holds())) {
      // Taken for dead (stalled longer than the lease): its segments belong to another process now.
      await this.serial(() => this.closeSegment());
      const present = new Set(await this.files.readdir(this.dir));
      for (const name of this.segments.keys()) if (!present.has(name)) this.segments.delete(name);
    }
    await this.owner.beat();
    await this.adopt();
  }

  private async closeSegment(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    await current?.handle.close();
  }

  /** File operations run one at a time, in order. */
  private serial<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.chain.then(operation);
    this.chain = result.catch(() => undefined);
    return result;
  }
}
