import { type QueryRunner } from 'typeorm';
import {
  addEntityChanges,
  type AuditContext,
  markRecorded,
  recordedFor,
  newAuditContext,
  ownerOf,
  type StagedChange,
  takeEntityChanges,
} from '../audit-context';
import { heldChange } from './cut-change';
import { type EntityChanges } from './entity-change';
import { committedElsewhere, insideUnreportedBlock, type RecordedAt, unreportedBlockOpen } from './unreported-transaction';

export { type RecordedAt } from './unreported-transaction';

/** A row `AuditService.record()` wrote in a transaction, with the changes it carries and the depth each was held at. */
interface RecordedRow {
  context: AuditContext | undefined;
  carried: { depth: number; level: Level }[];
  /** The row's id and table, to look it up before the outer COMMIT. */
  written?: RecordedAt;
  /** How long a look-up of the row may take (`writeTimeoutMs`). */
  timeoutMs?: number;
  /** Not found in its transaction before the outer COMMIT (or the look-up failed): it stands for nothing. */
  unconfirmed?: boolean;
  /** The savepoints sent as SQL that were set when it took its changes, each with how much of its level was held before it. */
  after?: Map<Savepoint, { kept: number; omitted: number }>;
}

/** What one transaction level holds: its changes (past the byte bound, only counted) and the record() rows written in it. */
interface Level {
  changes: StagedChange[];
  bytes: number;
  /** Of `bytes`, those of changes held with their values cut. */
  cutBytes: number;
  omitted: number;
  rows: RecordedRow[];
}

/**
 * Changes made through one query runner, by transaction depth (1 = the outer transaction, 2+ =
 * savepoints; 0 = a block TypeORM does not report, opened with SQL or through the driver).
 */
interface Pending {
  context: AuditContext | undefined;
  maxBytes: number;
  levels: (Level | undefined)[];
}

const pendingByRunner = new WeakMap<QueryRunner, Pending>();
/** A savepoint set with SQL: the depth it was set at and how much that level held then. */
interface Savepoint {
  name: string;
  depth: number;
  kept: number;
  omitted: number;
  /** Where the writes without an entity event stood then (`unheardMark()`). */
  unheard: number;
  /** Set by a string that failed after it, maybe before it ran: PostgreSQL may have kept an earlier one of its name. */
  maybe?: boolean;
}
/** Savepoints sent as SQL on each runner, oldest first (TypeORM's own are levels of `Pending`). */
const savepointsByRunner = new WeakMap<QueryRunner, Savepoint[]>();
/** Where a runner's savepoints bearing each name stand in its list, oldest first: a name is found without a scan. */
const savepointNames = new WeakMap<Savepoint[], Map<string, number[]>>();
/** Runners whose COMMIT PostgreSQL answered with ROLLBACK (the transaction had failed): TypeORM reports a commit. */
const commitsRolledBack = new WeakSet<QueryRunner>();

/**
 * TypeORM keeps the savepoint depth in a protected field; without it, a transaction counts as
 * depth 1. A transaction TypeORM reports that `pg` says is no block any more (ended by a COMMIT or
 * ROLLBACK sent as SQL) is depth 0: what is written then commits at once.
 */
function depthOf(queryRunner: QueryRunner): number {
  if (unreportedBlockOpen(queryRunner) === false) return 0;
  return ownDepth(queryRunner);
}

/** The depth TypeORM reports, whatever `pg` says: 0 outside a transaction TypeORM opened. */
function ownDepth(queryRunner: QueryRunner): number {
  if (!queryRunner.isTransactionActive) return 0;
  return (queryRunner as unknown as { transactionDepth?: number }).transactionDepth ?? 1;
}

const emptyLevel = (): Level => ({ changes: [], bytes: 0, cutBytes: 0, omitted: 0, rows: [] });
const held = (pending: Pending) => ({
  bytes: pending.levels.reduce((sum, level) => sum + (level?.bytes ?? 0), 0),
  cutBytes: pending.levels.reduce((sum, level) => sum + (level?.cutBytes ?? 0), 0),
});

/**
 * Holds a change until its transaction commits; outside a transaction it is committed already.
 * What a transaction holds is bounded by `maxBytes` (a change past it is only counted). Outside a
 * transaction TypeORM reports, a block `pg` says is open holds it too, until the block's COMMIT
 * or ROLLBACK is seen; a block that ended unseen (through the driver) has its changes counted in
 * `entitiesOmitted` when they are taken for a row.
 *
 * @example
 * stageChange(queryRunner, context, { value: change, bytes: 120 }, 32 * 1024);
 */
export function stageChange(queryRunner: QueryRunner, context: AuditContext, change: StagedChange, maxBytes: number): void {
  const depth = depthOf(queryRunner);
  if (depth === 0 && unreportedBlockOpen(queryRunner) !== true) return addEntityChanges(context, [change], maxBytes);
  const pending = pendingOf(queryRunner, maxBytes);
  pending.context ??= context;
  if (depth === 0 && !pending.levels[0]) watchBlock(queryRunner, pending, context);
  hold(pending, depth, [change], 0);
}

/**
 * Holds `count` writes that cannot be listed until their transaction commits (counted then in
 * `entitiesOmitted`, dropped on rollback, as {@link stageChange} holds a change); outside a
 * transaction they are counted at once.
 *
 * @example
 * stageOmitted(queryRunner, context, 2, 32 * 1024); // two writes the database made on its own
 */
export function stageOmitted(queryRunner: QueryRunner, context: AuditContext, count: number, maxBytes: number): void {
  const depth = depthOf(queryRunner);
  if (depth === 0 && unreportedBlockOpen(queryRunner) !== true) {
    ownerOf(context).omitted += count;
    return;
  }
  const pending = pendingOf(queryRunner, maxBytes);
  pending.context ??= context;
  if (depth === 0 && !pending.levels[0]) watchBlock(queryRunner, pending, context);
  hold(pending, depth, [], count);
}

/** Before `context`'s changes are taken: a block that ended without its end being seen counts what it held. */
function watchBlock(queryRunner: QueryRunner, pending: Pending, context: AuditContext): void {
  const owner = ownerOf(context);
  const settle = () => {
    if (!pending.levels[0]) return;
    // A released runner's connection may be another runner's by now: its status is not this block's.
    if (queryRunner.isReleased || unreportedBlockOpen(queryRunner) === false) return blockEnded(queryRunner, pending, undefined);
    // Still open: asked again at the next take.
    (owner.blocks ??= []).push(settle);
  };
  (owner.blocks ??= []).push(settle);
}

/** The block held at level 0 ended: `command` is PostgreSQL's answer to its end, if seen (COMMIT, ROLLBACK). */
function blockEnded(queryRunner: QueryRunner, pending: Pending, command: 'COMMIT' | 'ROLLBACK' | undefined): void {
  const level = pending.levels[0];
  pending.levels[0] = undefined;
  savepointsByRunner.delete(queryRunner);
  if (pending.levels.every((held) => !held)) pendingByRunner.delete(queryRunner);
  if (!level || !pending.context || command === 'ROLLBACK') return;
  if (command === 'COMMIT') return handOver(pending.context, level, pending.maxBytes);
  ownerOf(pending.context).omitted += level.changes.length + level.omitted;
}

/**
 * Whether `queryRunner` holds changes made in a block TypeORM does not report (level 0).
 *
 * @example
 * const holding = heldBlockOpen(queryRunner); // true once a raw block holds a change, until it ends
 */
export function heldBlockOpen(queryRunner: QueryRunner): boolean {
  return pendingByRunner.get(queryRunner)?.levels[0] !== undefined;
}

/**
 * The block TypeORM does not report ended (`command`: PostgreSQL's answer to its end): COMMIT
 * hands its changes over, ROLLBACK drops them, an end not seen (undefined) has them counted.
 *
 * @example
 * heldBlockEnded(queryRunner, 'COMMIT'); // `COMMIT; BEGIN` sent as one string
 */
export function heldBlockEnded(queryRunner: QueryRunner, command: 'COMMIT' | 'ROLLBACK' | undefined): void {
  savepointsByRunner.delete(queryRunner);
  const pending = pendingByRunner.get(queryRunner);
  if (pending?.levels[0]) blockEnded(queryRunner, pending, command);
}

/**
 * A COMMIT or ROLLBACK sent as SQL inside a transaction TypeORM reports (`command`: PostgreSQL's
 * answer; undefined when not known, in a string that failed after it): every level it holds ends
 * there, savepoints too. COMMIT hands the changes over and marks the contexts of the record()
 * rows (but those not found before TypeORM's own COMMIT, which comes here too), ROLLBACK drops
 * them, an answer not known has the changes counted in `entitiesOmitted` and each record() row
 * stands for its request only if another connection finds it committed when the request's row is
 * decided (a COMMIT in a string that failed after it, a transaction ended through the driver).
 *
 * @example
 * transactionEndedBySql(queryRunner, 'COMMIT'); // manager.query('COMMIT; BEGIN')
 */
export function transactionEndedBySql(queryRunner: QueryRunner, command: 'COMMIT' | 'ROLLBACK' | undefined): void {
  savepointsByRunner.delete(queryRunner);
  const pending = pendingByRunner.get(queryRunner);
  if (!pending) return;
  pendingByRunner.delete(queryRunner);
  const done = merged(pending.levels);
  if (command === 'ROLLBACK') return;
  if (command === 'COMMIT') {
    if (pending.context) handOver(pending.context, done, pending.maxBytes);
    // TypeORM's own COMMIT comes here too, after its rows were looked up: one not found stands for nothing.
    for (const row of done.rows) if (row.context && !row.unconfirmed) markRecorded(row.context);
    return;
  }
  if (pending.context) ownerOf(pending.context).omitted += done.changes.length + done.omitted;
  for (const row of done.rows) settleLater(queryRunner, row);
}

/** A record() row whose transaction ended with an answer not known: looked up from another connection when the request's row is decided. */
function settleLater(queryRunner: QueryRunner, row: RecordedRow): void {
  const at = row.written;
  if (!row.context || !at) return;
  const owner = recordedFor(row.context);
  // Only an open request's row waits on the answer.
  if (owner?.kind !== 'request' || owner.closed) return;
  (owner.unsettled ??= []).push(() => committedElsewhere(queryRunner.dataSource, at, row.timeoutMs ?? 5000));
}

/**
 * TypeORM's own COMMIT was answered with ROLLBACK (the transaction had failed): its commit event counts as a rollback.
 *
 * @example
 * commitRolledBack(queryRunner); // afterQuery('COMMIT') with { command: 'ROLLBACK' }
 */
export function commitRolledBack(queryRunner: QueryRunner): void {
  commitsRolledBack.add(queryRunner);
}

/**
 * A savepoint command sent as SQL that succeeded, at the runner's depth: SAVEPOINT marks the
 * level (and `unheard`, where the writes without an event stand), ROLLBACK TO drops what the
 * level held since and returns that `unheard` mark, RELEASE forgets the mark. TypeORM's own
 * savepoints are levels of their own, not followed here.
 *
 * @example
 * followSavepoint(queryRunner, { kind: 'rollback-to', name: 's1' }, unheardMark()); // the mark of SAVEPOINT s1
 */
export function followSavepoint(
  queryRunner: QueryRunner,
  sent: { kind: 'savepoint' | 'rollback-to' | 'release'; name: string },
  unheard: number,
): number | undefined {
  if (/^typeorm_\d+$/.test(sent.name)) return undefined;
  const depth = depthOf(queryRunner);
  const savepoints = savepointsByRunner.get(queryRunner) ?? [];
  if (sent.kind === 'savepoint') {
    const level = pendingByRunner.get(queryRunner)?.levels[depth];
    savepoints.push({ name: sent.name, depth, kept: level?.changes.length ?? 0, omitted: level?.omitted ?? 0, unheard });
    savepointsByRunner.set(queryRunner, savepoints);
    const names = savepointNames.get(savepoints) ?? new Map<string, number[]>();
    const places = names.get(sent.name) ?? [];
    savepointNames.set(savepoints, names.set(sent.name, places));
    places.push(savepoints.length - 1);
    return undefined;
  }
  const names = savepointNames.get(savepoints);
  const places = names?.get(sent.name);
  const at = places?.at(-1);
  if (!names || !places || at === undefined) return undefined;
  const mark = savepoints[at];
  // Maybe never set: PostgreSQL went back to the earlier one of the name, or to this one. What
  // was held since the earlier one may be gone: counted, not listed, as for a failed string's.
  // (RELEASE drops nothing, whichever it ends.)
  const earlier = mark.maybe && sent.kind === 'rollback-to' ? places.at(-2) : undefined;
  if (earlier !== undefined) heldSince(queryRunner, savepoints, earlier);
  else mark.maybe = false;
  // ROLLBACK TO keeps the savepoint, RELEASE ends it; either ends the later ones (the latest of their names).
  for (const ended of savepoints.splice(sent.kind === 'release' ? at : at + 1)) names.get(ended.name)?.pop();
  if (sent.kind === 'release') return undefined;
  const pending = pendingByRunner.get(queryRunner);
  const level = pending?.levels[mark.depth];
  if (level) {
    level.changes.splice(mark.kept);
    level.omitted = Math.min(level.omitted, mark.omitted);
    level.bytes = level.changes.reduce((sum, change) => sum + change.bytes, 0);
    level.cutBytes = level.changes.reduce((sum, change) => sum + (change.cut ? change.bytes : 0), 0);
  }
  if (pending) rowsRolledBackTo(pending, mark);
  return mark.unheard;
}

/**
 * Savepoint commands sent as SQL in a string that failed, in a block, before its last statement
 * (which failed or came after the one that did: it never took effect): PostgreSQL ran them up to
 * the statement that failed, which is not known. What the level held since the earliest
 * savepoint already set that they roll back to or release may be gone: it is counted in
 * `entitiesOmitted` from now on, not listed (and dropped by a later `ROLLBACK TO` a savepoint set
 * before it). Each savepoint they set is noted where the changes then stand, as maybe set: a
 * later `ROLLBACK TO` it (which PostgreSQL answers only if it, or an earlier one of its name, was
 * set) is followed, and counts what was held since the earlier one of its name, if any.
 *
 * @example
 * failedSavepoints(queryRunner, [{ kind: 'rollback-to', name: 's' }, { kind: 'savepoint', name: 'retry' }], unheardMark());
 */
export function failedSavepoints(
  queryRunner: QueryRunner,
  sent: { kind: 'savepoint' | 'rollback-to' | 'release'; name: string }[],
  unheard: number,
): void {
  const savepoints = savepointsByRunner.get(queryRunner) ?? [];
  const names = savepointNames.get(savepoints);
  let earliest = savepoints.length;
  for (const command of sent) if (command.kind !== 'savepoint') earliest = Math.min(earliest, names?.get(command.name)?.at(-1) ?? earliest);
  heldSince(queryRunner, savepoints, earliest);
  for (const command of sent) {
    if (command.kind !== 'savepoint') continue;
    followSavepoint(queryRunner, command, unheard);
    const set = savepointsByRunner.get(queryRunner)?.at(-1);
    if (set) set.maybe = true;
  }
}

/**
 * What the levels held since savepoint `earliest` of `savepoints` (the runner's) may be gone: it
 * is counted in `entitiesOmitted` from now on, not listed, and the savepoints set since mark no more.
 */
function heldSince(queryRunner: QueryRunner, savepoints: Savepoint[], earliest: number): void {
  const pending = pendingByRunner.get(queryRunner);
  const mark = savepoints[earliest];
  if (mark && pending) {
    pending.levels.forEach((level, depth) => {
      if (!level || depth < mark.depth) return;
      const kept = depth === mark.depth ? mark.kept : 0;
      level.omitted += Math.max(0, level.changes.length - kept);
      level.changes.splice(kept);
      level.bytes = level.changes.reduce((sum, change) => sum + change.bytes, 0);
      level.cutBytes = level.changes.reduce((sum, change) => sum + (change.cut ? change.bytes : 0), 0);
    });
    // The savepoints set since count what they held past that one as omitted too. Back from the
    // latest: one of its level that held no more than it did is where an earlier failure left them.
    for (let at = savepoints.length - 1; at > earliest; at -= 1) {
      const later = savepoints[at];
      if (later.depth === mark.depth && later.kept <= mark.kept) break;
      if (later.depth < mark.depth) continue;
      const kept = later.depth === mark.depth ? mark.kept : 0;
      Object.assign(later, { omitted: later.omitted + later.kept - kept, kept });
    }
  }
}

/**
 * `ROLLBACK TO` a savepoint sent as SQL discards the record() rows written since it was set:
 * what each carried from before it is held again, for the request's own row; what it carried
 * from after it is dropped with it. The savepoint then marks what its level holds.
 */
function rowsRolledBackTo(pending: Pending, mark: Savepoint): void {
  for (const level of pending.levels) {
    const undone = level?.rows.filter((row) => row.after?.has(mark)) ?? [];
    if (!level || undone.length === 0) continue;
    level.rows = level.rows.filter((row) => !undone.includes(row));
    for (const row of undone) {
      const before = row.after?.get(mark) ?? { kept: 0, omitted: 0 };
      for (const { depth, level: held } of row.carried) {
        if (depth < mark.depth) hold(pending, depth, held.changes, held.omitted);
        else if (depth === mark.depth) hold(pending, depth, held.changes.slice(0, before.kept), Math.min(held.omitted, before.omitted));
      }
    }
  }
  const level = pending.levels[mark.depth];
  Object.assign(mark, { kept: level?.changes.length ?? 0, omitted: level?.omitted ?? 0 });
}

/**
 * After a commit: a released savepoint's changes and rows join its parent; the outer commit hands
 * the changes to the context they were made in and marks the contexts of its record() rows. A
 * COMMIT that PostgreSQL answered with ROLLBACK counts as a rollback.
 *
 * @example
 * transactionCommitted(queryRunner); // from the subscriber's afterTransactionCommit()
 */
export function transactionCommitted(queryRunner: QueryRunner): void {
  if (commitsRolledBack.delete(queryRunner)) return transactionRolledBack(queryRunner);
  const pending = pendingByRunner.get(queryRunner);
  if (!pending) return;
  const depth = depthOf(queryRunner);
  // TypeORM's outer COMMIT ends a block TypeORM did not report too (there is one per connection).
  const done = merged(pending.levels.splice(depth > 0 ? depth + 1 : 0));
  if (depth > 0) {
    pending.levels[depth] = merged([pending.levels[depth], done]);
    return;
  }
  pendingByRunner.delete(queryRunner);
  savepointsByRunner.delete(queryRunner);
  if (pending.context) handOver(pending.context, done, pending.maxBytes);
  for (const row of done.rows) if (row.context && !row.unconfirmed) markRecorded(row.context);
}

/**
 * After a rollback: the changes and record() rows of the rolled-back transaction (or savepoint)
 * are dropped; changes a dropped row carried from a level that lives on go back to that level.
 *
 * @example
 * transactionRolledBack(queryRunner); // from the subscriber's afterTransactionRollback()
 */
export function transactionRolledBack(queryRunner: QueryRunner): void {
  const pending = pendingByRunner.get(queryRunner);
  if (!pending) return;
  const depth = depthOf(queryRunner);
  for (const level of pending.levels.splice(depth + 1)) {
    for (const row of level?.rows ?? []) giveBack(pending, row, depth);
  }
  if (depth > 0) return;
  pendingByRunner.delete(queryRunner);
  savepointsByRunner.delete(queryRunner);
}

/**
 * Before the outer COMMIT (depth 1): looks up, inside the transaction, the record() rows it still
 * holds. A row not there was discarded by something TypeORM does not report (a savepoint rolled
 * back with SQL, a PL/pgSQL exception block): it does not stand for its request, which gets its own
 * row. When the look-up fails, no row does. A transaction that `pg` says is no block any more,
 * with no COMMIT or ROLLBACK seen, ended unseen (through the driver's client): its changes are
 * counted and its rows looked up from another connection when the request's row is decided. The
 * look-up runs in a savepoint of its own under
 * `statement_timeout = timeoutMs`, rolled back after it, so it never fails the caller's transaction
 * nor changes its settings; it never rejects.
 *
 * @example
 * await confirmRecordedRows(queryRunner, 5000); // from the subscriber's beforeTransactionCommit()
 */
export async function confirmRecordedRows(queryRunner: QueryRunner, timeoutMs: number): Promise<void> {
  const depth = depthOf(queryRunner);
  if (depth === 0 && ownDepth(queryRunner) === 1 && pendingByRunner.has(queryRunner)) return transactionEndedBySql(queryRunner, undefined);
  if (depth !== 1) return;
  const tables = new Map<string, { row: RecordedRow; at: RecordedAt }[]>();
  for (const level of pendingByRunner.get(queryRunner)?.levels ?? []) {
    for (const row of level?.rows ?? []) {
      if (!row.context || !row.written) continue;
      const at = row.written;
      tables.set(at.table, [...(tables.get(at.table) ?? []), { row, at }]);
    }
  }
  for (const [table, written] of tables) {
    const found = await lookUp(
      queryRunner,
      table,
      written.map(({ at }) => at),
      timeoutMs,
    );
    for (const { row, at } of written) if (!found?.has(at.id)) row.unconfirmed = true;
  }
}

/**
 * The ids of the rows `keys` names that `table` holds, as the transaction sees it; undefined when
 * the look-up failed. It goes by the key (id, occurred_at), so PostgreSQL reads only the months
 * of those rows: neither the trail's size nor a lock held on another month can outlast `timeoutMs`.
 */
async function lookUp(queryRunner: QueryRunner, table: string, keys: RecordedAt[], timeoutMs: number): Promise<Set<string> | undefined> {
  try {
    await queryRunner.query('SAVEPOINT audit_record_check');
  } catch {
    // The transaction has failed already: its COMMIT will be answered with ROLLBACK.
    return undefined;
  }
  let found: Set<string> | undefined;
  try {
    await queryRunner.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
    const rows = (await queryRunner.query(
      `SELECT id::text AS id FROM ${table} WHERE id = ANY($1::uuid[]) AND occurred_at = ANY($2::timestamptz[])`,
      [keys.map((key) => key.id), keys.map((key) => key.occurredAt)],
    )) as { id: string }[];
    found = new Set(rows.map((row) => row.id));
  } catch {
    found = undefined;
  }
  try {
    // Rolled back, not released: the timeout setting ends with the savepoint.
    await queryRunner.query('ROLLBACK TO SAVEPOINT audit_record_check');
    await queryRunner.query('RELEASE SAVEPOINT audit_record_check');
  } catch {
    return undefined;
  }
  return found;
}

/** The changes a record() row carries, and what becomes of them once its insert is done. */
export interface RecordHold {
  /** The uncommitted changes of the manager's transaction, for the row; undefined when none. */
  readonly changes: EntityChanges | undefined;
  /**
   * The row is inserted (`at`: where, to confirm it before the outer COMMIT): once its transaction
   * commits, the context's own row is not written. Outside a transaction TypeORM reports, on a
   * query runner, it resolves once it is known whether a block is open; never rejects.
   */
  written(at?: RecordedAt): Promise<void> | void;
  /** The insert failed: the changes are held where they were. */
  failed(): void;
}

/**
 * Takes the uncommitted changes of the transaction `queryRunner` is in, for a row
 * `AuditService.record()` writes in it: they commit or roll back with that row. Outside a
 * transaction the row commits at once. On a query runner TypeORM reports in no transaction, a
 * block opened some other way may be open (see {@link insideUnreportedBlock}): if one is, or that
 * is unknown, the row stands for the request only if a look-up from another connection, bounded
 * by `timeoutMs`, finds it committed when the request's row is decided.
 *
 * @example
 * const hold = holdForRecord(manager.queryRunner, currentAuditContext(), 5000);
 * try {
 *   await insert(withEntityChanges(entry, hold.changes));
 * } catch (error) {
 *   hold.failed();
 *   throw error;
 * }
 * await hold.written(at);
 */
export function holdForRecord(queryRunner: QueryRunner | undefined, context: AuditContext | undefined, timeoutMs = 5000): RecordHold {
  const depth = queryRunner ? depthOf(queryRunner) : 0;
  if (!queryRunner || depth === 0) {
    const written = (at?: RecordedAt) => {
      const owner = context && recordedFor(context);
      // An abandoned attempt's row stands for nothing; only an open request's row waits on the answer.
      if (!context || !owner) return;
      if (!queryRunner || !at || owner.kind !== 'request' || owner.closed) return markRecorded(context);
      return settleOutside(queryRunner, context, at, timeoutMs);
    };
    // In a block TypeORM does not report, the row carries what the block holds: they commit together.
    const pending = queryRunner && unreportedBlockOpen(queryRunner) === true ? pendingByRunner.get(queryRunner) : undefined;
    if (!queryRunner || !pending?.levels[0]) return { changes: undefined, written, failed: () => undefined };
    const { row, changes } = carried(queryRunner, pending, context);
    const writtenInBlock = (at?: RecordedAt) => {
      // Held with the block, so that `ROLLBACK TO` a savepoint set before it gives back what it carried.
      (pending.levels[0] ??= emptyLevel()).rows.push(row);
      return written(at);
    };
    return { changes, written: writtenInBlock, failed: () => giveBack(pending, row, 0) };
  }
  const pending = pendingOf(queryRunner, Infinity);
  const { row, changes } = carried(queryRunner, pending, context);
  return {
    changes,
    written: (at) => {
      row.written = at;
      row.timeoutMs = timeoutMs;
      (pending.levels[depth] ??= emptyLevel()).rows.push(row);
    },
    failed: () => giveBack(pending, row, depth),
  };
}

/** Takes the changes every level of `pending` holds for a record() row, within the runner's byte bound. */
function carried(
  queryRunner: QueryRunner,
  pending: Pending,
  context: AuditContext | undefined,
): { row: RecordedRow; changes: EntityChanges | undefined } {
  const row: RecordedRow = { context, carried: [] };
  pending.levels.forEach((level, at) => {
    if (!level || (level.changes.length === 0 && level.omitted === 0)) return;
    const { changes, bytes, cutBytes, omitted } = level;
    row.carried.push({ depth: at, level: { ...emptyLevel(), changes, bytes, cutBytes, omitted } });
    pending.levels[at] = { ...emptyLevel(), rows: level.rows };
  });
  const marks = savepointsByRunner.get(queryRunner) ?? [];
  if (marks.length > 0) row.after = new Map(marks.map((mark) => [mark, { kept: mark.kept, omitted: mark.omitted }]));
  // A savepoint set before the take, rolled back after it, drops only what was held since the take.
  for (const mark of marks) Object.assign(mark, { kept: 0, omitted: 0 });
  const bounded = newAuditContext('scope');
  handOver(bounded, merged(row.carried.map((c) => c.level)), pending.maxBytes);
  return { row, changes: takeEntityChanges(bounded) };
}

/** A row written on a query runner in no transaction TypeORM reports: committed with its insert, unless a block is open. */
async function settleOutside(queryRunner: QueryRunner, context: AuditContext, at: RecordedAt, timeoutMs: number): Promise<void> {
  if ((await insideUnreportedBlock(queryRunner)) === false) return markRecorded(context);
  const owner = recordedFor(context);
  if (owner) (owner.unsettled ??= []).push(() => committedElsewhere(queryRunner.dataSource, at, timeoutMs));
}

function pendingOf(queryRunner: QueryRunner, maxBytes: number): Pending {
  let pending = pendingByRunner.get(queryRunner);
  if (!pending) pendingByRunner.set(queryRunner, (pending = { context: undefined, maxBytes, levels: [] }));
  if (maxBytes < pending.maxBytes) pending.maxBytes = maxBytes;
  return pending;
}

/** Holds `changes` at `depth`, within the runner's byte bound; `omitted` more were left out before. */
function hold(pending: Pending, depth: number, changes: readonly StagedChange[], omitted: number): void {
  const level = (pending.levels[depth] ??= emptyLevel());
  level.omitted += omitted;
  for (const given of changes) {
    const change = heldChange(held(pending), given, pending.maxBytes);
    if (!change) {
      level.omitted += 1;
      continue;
    }
    level.changes.push(change);
    level.bytes += change.bytes;
    if (change.cut) level.cutBytes += change.bytes;
  }
}

/** A record() row that will not commit: what it carried from levels up to `depth` is held there again. */
function giveBack(pending: Pending, row: RecordedRow, depth: number): void {
  for (const { depth: at, level } of row.carried) if (at <= depth) hold(pending, at, level.changes, level.omitted);
}

function merged(levels: (Level | undefined)[]): Level {
  const into = emptyLevel();
  for (const level of levels) {
    if (!level) continue;
    into.changes.push(...level.changes);
    into.bytes += level.bytes;
    into.cutBytes += level.cutBytes;
    into.omitted += level.omitted;
    into.rows.push(...level.rows);
  }
  return into;
}

function handOver(context: AuditContext, level: Level, maxBytes: number): void {
  addEntityChanges(context, level.changes, maxBytes);
  ownerOf(context).omitted += level.omitted;
}
