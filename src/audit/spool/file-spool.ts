import { join } from 'node:path';
import { type AuditRecord } from '../audit-entry';
import { type AuditSpool, type SpoolAppendResult, type SpoolRejection } from './audit-spool';
import { boundedFiles } from './bounded-files';
import {
  appendWhole,
  encodeAppends,
  keep,
  planSegment,
  refuse,
  type SegmentPlan,
  SegmentAppendError,
  type SpoolLine,
} from './segment-append';
import { adoptSegments, countAdoptedLines } from './segment-adoption';
import { quarantineBytes } from './directory-bytes';
import { type DirectoryLedger, directoryLedger } from './directory-ledger';
import { otherSegmentBytes } from './other-segments';
import { type SegmentName, segmentName } from './segment-name';
import { replaySegments, type SegmentState, segmentState } from './segment-replay';
import { nodeSpoolFiles, type SpoolFileHandle, type SpoolFiles } from './spool-files';
import { SegmentTakenError } from './spool-errors';
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

/** How long after the last count of the other owners' segments a refusal has them counted again. */
const RECOUNT_AFTER_MS = 1000;

interface PendingAppend {
  records: AuditRecord[];
  resolve: (result: SpoolAppendResult) => void;
}

/**
 * The durable spool on local disk: append-only NDJSON segment files (0600, in a 0700 directory),
 * one checksummed record a line, fsynced before an append resolves. Concurrent appends share one
 * write and one fsync per segment. Segments rotate by size (no write passes it, but for a single
 * record larger than a segment): a large batch spans segments. Past `maxBytes` in all, records are
 * refused.
 *
 * Processes may share the directory (a rolling deploy on a shared volume): each writes and
 * replays only its own segments (named by its {@link SpoolOwner} id) and adopts those of a process
 * that is gone, or that closed, and those of older versions. An older version still running
 * beside this one must not be spooling: its segments are adopted at once.
 *
 * `maxBytes` bounds the directory: this process's segments (counted as it writes them) and every
 * other owner's, live or gone, and the quarantine's files, only measured by `stat` (when the spool
 * opens, before each new segment, the first too, at each heartbeat, and while refusing at most once
 * a second; no segment is begun without such a count). One that cannot be measured counts as a full
 * segment, an adopted one too; an adopted segment's lines are read after, outside the count (until
 * they are, it adds no {@link entries}). Counts and adoptions take turns, so no count misses a
 * segment between its two owners. So N processes appending at once can pass `maxBytes` by at most
 * one segment each but one (`segmentBytes` plus one record): what each wrote since another last
 * counted it. One process alone never: its spool and its quarantine (any writer of the directory
 * in the process) share a {@link DirectoryLedger}: each decides and writes in its turn, and the
 * spool adds to its last count what the others of the process wrote since.
 *
 * A process taken for dead while it lives (its lease looked expired) may have its open segment
 * adopted, replayed and deleted under it: after each fsync the spool checks that the segment still
 * has its name; if not, it gives it up, writes its claim anew and writes the lines once more to a
 * new segment (a replay inserts each entry once), refusing them (`AUDIT_SPOOL_SEGMENT_TAKEN`) if
 * that one is taken too.
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
  /** Counts of the directory and changes of what this owner holds in it, one at a time, in order. */
  private accounting: Promise<unknown> = Promise.resolve();
  private counter = 0;
  /** The segment being created, before it is among {@link segments}. */
  private creating: string | undefined;
  /**
   * The bytes of the directory beyond this owner's segments (the others', the quarantine's) as last
   * counted, when, and what this process's other writers had written by then ({@link othersBytes}).
   */
  private others = { bytes: 0, at: 0, mark: 0 };
  /** This process's account of the directory, shared with its quarantine (and any other writer of it). */
  private readonly ledger: DirectoryLedger;
  /** What this spool reported to {@link ledger}. */
  private ownWritten = 0;

  private constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    private readonly segmentBytes: number,
    private readonly files: SpoolFiles,
    private readonly owner: SpoolOwner,
    ledger: DirectoryLedger,
  ) {
    this.ledger = ledger;
  }

  /**
   * Opens (creating if needed) the spool directory, claims a part of it, and adopts the segments
   * no live process owns; then, every third of the lease, refreshes the claim and adopts again.
   * The directory is then known by its real path ({@link dir}): the one the kernel made, also when
   * `dir` names it through a symbolic link and `..`.
   */
  static async open(dir: string, options: FileSpoolOptions): Promise<FileSpool> {
    const given = options.files ?? nodeSpoolFiles;
    const files = options.timeoutMs === undefined ? given : boundedFiles(given, options.timeoutMs, dir);
    await files.mkdir(dir, 0o700);
    const ledger = await directoryLedger(dir, options.timeoutMs);
    // The directory mkdir made, by its real path: the lease, the segments and the ledger are all in it.
    const owner = new SpoolOwner(ledger.dir, files, options.leaseMs ?? 30_000);
    await owner.beat();
    const spool = new FileSpool(ledger.dir, options.maxBytes, options.segmentBytes, files, owner, ledger);
    await spool.adopt();
    owner.start(() => spool.heartbeat());
    return spool;
  }

  /** A segment whose lines are not counted yet (it could not be read) adds none until they are. */
  get entries(): number {
    return [...this.segments.values()].reduce((sum, s) => sum + (s.lines ?? 0), 0);
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
    const results = await this.write(batch.map((b) => b.records));
    batch.forEach(({ resolve }, i) => resolve(results[i]));
  }

  private async write(appends: AuditRecord[][]): Promise<SpoolAppendResult[]> {
    const results: SpoolAppendResult[] = appends.map(() => ({ kept: [], dropped: [] }));
    let lines = encodeAppends(appends);
    let retried = false;
    while (lines.length > 0) {
      const step = await this.ledger.turn(() => this.writeStep(lines));
      if ('error' in step) {
        refuse(results, lines, `spool_error: ${step.error.message}`);
        break;
      }
      const { plan, failure } = step;
      refuse(results, plan.full, 'spool_full');
      if (failure instanceof SegmentTakenError && !retried) {
        retried = true;
        lines = [...plan.write, ...plan.rest];
        continue;
      }
      if (failure) {
        refuse(results, [...plan.write, ...plan.rest], `spool_error: ${failure.message}`);
        break;
      }
      keep(results, plan.write);
      lines = plan.rest;
    }
    return results;
  }

  /**
   * Plans `lines` and writes what fits, in one turn of the directory's writers in this process: no
   * other (the quarantine) decides on a count that misses these bytes, nor writes in between.
   */
  private async writeStep(lines: SpoolLine[]): Promise<{ plan: SegmentPlan; failure?: Error } | { error: Error }> {
    let plan: SegmentPlan;
    try {
      plan = await this.plan(lines);
    } catch (error) {
      return { error: error as Error };
    }
    const failure = plan.write.length > 0 ? await this.writeLines(plan.write) : undefined;
    return { plan, failure };
  }

  /**
   * What of `lines` goes into the open segment (closed first when full or when the next line does
   * not fit it), or into a new one; a new segment is planned on a fresh count of the others.
   */
  private async plan(lines: SpoolLine[]): Promise<SegmentPlan> {
    if (this.current && this.currentBytes() >= this.segmentBytes) await this.closeSegment();
    let plan = this.planIn(lines);
    if (this.current && plan.write.length === 0 && plan.rest.length > 0) {
      await this.closeSegment();
      plan = this.planIn(lines);
    }
    // What the others replayed since the last count may have made room.
    if (plan.full.length > 0 && this.othersBytes() > 0 && Date.now() - this.others.at >= RECOUNT_AFTER_MS) {
      await this.countOthers().catch(() => undefined);
      plan = this.planIn(lines);
    }
    if (!this.current && plan.write.length > 0) {
      await this.countOthers();
      plan = this.planIn(lines);
    }
    return plan;
  }

  private planIn(lines: SpoolLine[]): SegmentPlan {
    return planSegment(lines, this.maxBytes - this.bytes - this.othersBytes(), this.segmentBytes, this.current ? this.currentBytes() : 0);
  }

  /** The others' bytes as last counted, and what this process's other writers (the quarantine) wrote since. */
  private othersBytes(): number {
    return this.others.bytes + this.foreignWritten() - this.others.mark;
  }

  /** What this process's writers of the directory but this spool reported to the ledger. */
  private foreignWritten(): number {
    return this.ledger.written - this.ownWritten;
  }

  private currentBytes(): number {
    return this.current ? (this.segments.get(this.current.name)?.bytes ?? 0) : 0;
  }

  /** Writes `lines` to the open segment (or a new one) in one write and one fsync; returns what failed. */
  private async writeLines(lines: SpoolLine[]): Promise<Error | undefined> {
    const buffer = Buffer.from(lines.map((line) => line.text).join(''));
    let segment: { name: string; handle: SpoolFileHandle } | undefined;
    try {
      segment = await this.segment();
      const stats = this.segments.get(segment.name)!;
      await appendWhole(segment.handle, buffer, stats.bytes);
      this.wrote(buffer.length);
      stats.bytes += buffer.length;
      stats.lines = (stats.lines ?? 0) + lines.length;
      return await this.stillHeld(segment.name);
    } catch (error) {
      if (segment && error instanceof SegmentAppendError && !error.restored) {
        // The segment now ends in part of a line, which replay will report; nothing may follow it.
        const stats = this.segments.get(segment.name)!;
        this.wrote(buffer.length);
        stats.bytes += buffer.length;
        stats.lines = (stats.lines ?? 0) + 1;
        await this.closeSegment().catch(() => undefined);
      }
      return error as Error;
    }
  }

  /**
   * Whether the segment `name` is still under its name once its lines are fsynced: if so, a process
   * that adopts it later renames it first and reads these lines. If not, another process took this
   * one for dead and adopted it meanwhile, and may have replayed and deleted it before the lines
   * landed: the segment is given up to it, the claim written anew (else this owner's next segment
   * would be adopted as a closed owner's), and the lines are to be written again.
   */
  private async stillHeld(name: string): Promise<Error | undefined> {
    const gone = await this.files.stat(join(this.dir, name)).then(
      () => false,
      (error: { code?: string } | null) => error?.code === 'ENOENT',
    );
    if (!gone) return undefined;
    await this.closeSegment().catch(() => undefined);
    await this.account(async () => void this.segments.delete(name));
    await this.owner.beat();
    return new SegmentTakenError(name);
  }

  private wrote(bytes: number): void {
    this.ownWritten += bytes;
    this.ledger.wrote(bytes);
  }

  /** The open segment, or a new one ({@link plan} has closed a full one). */
  private async segment(): Promise<{ name: string; handle: SpoolFileHandle }> {
    if (this.current) return this.current;
    await this.owner.claim();
    const name = segmentName(String(Date.now()), this.counter++, this.owner.id);
    this.creating = name;
    try {
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
    } finally {
      this.creating = undefined;
    }
  }

  /**
   * Adopts the segments of gone owners and counts the others' anew, as one step of the accounting
   * (no count sees a segment between its rename and its place among this owner's); then counts
   * the lines of the adopted segments not counted yet, outside it.
   */
  private adopt(): Promise<void> {
    this.adopting ??= this.account(async () => {
      const nameFor = (s: SegmentName) => segmentName(s.time, this.counter++, this.owner.id);
      const terms = { nameFor, holds: this.holds, segmentBytes: this.segmentBytes };
      const adopted = await adoptSegments(this.dir, this.files, this.owner, terms);
      for (const [name, state] of adopted) if (!this.holds(name)) this.segments.set(name, state);
      // A failed count leaves the last one standing; no segment is begun without one since the last close.
      await this.readOthers().catch(() => undefined);
    })
      .then(() => countAdoptedLines(this.files, this.dir, this.segments, this.current?.name))
      .finally(() => (this.adopting = undefined));
    return this.adopting;
  }

  /** Counts the others' segments, in turn with the adoptions (which move segments between owners). */
  private countOthers(): Promise<void> {
    return this.account(() => this.readOthers());
  }

  private async readOthers(): Promise<void> {
    const at = Date.now();
    // Taken before the count: what the quarantine writes during it is counted twice, never missed.
    const mark = this.foreignWritten();
    const segments = await otherSegmentBytes(this.files, this.dir, this.holds, this.segmentBytes);
    this.others = { bytes: segments + (await quarantineBytes(this.files, this.dir, this.segmentBytes)), at, mark };
  }

  /** Whether a segment of this name is among this owner's, or being created. */
  private readonly holds = (name: string): boolean => this.segments.has(name) || name === this.creating;

  private async heartbeat(): Promise<void> {
    if (!(await this.owner.holds())) {
      // Taken for dead (stalled longer than the lease): its segments belong to another process now.
      await this.serial(() => this.closeSegment());
      await this.account(async () => {
        const present = new Set(await this.files.readdir(this.dir));
        for (const name of this.segments.keys()) if (!present.has(name)) this.segments.delete(name);
      });
    }
    await this.owner.beat();
    await this.adopt();
  }

  private async closeSegment(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    await current?.handle.close();
  }

  /** Steps of the directory's accounting run one at a time, in order. */
  private account<T>(step: () => Promise<T>): Promise<T> {
    const result = this.accounting.then(step);
    this.accounting = result.catch(() => undefined);
    return result;
  }

  /** File operations run one at a time, in order. */
  private serial<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.chain.then(operation);
    this.chain = result.catch(() => undefined);
    return result;
  }
}
