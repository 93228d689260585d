import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { type AuditContext, currentAuditContext, ownerOf } from '../audit-context';
import { type SqlStatement, type TableName } from './sql-reader';
import { nameCut } from './sql-tokens';
import { unreportedBlockOpen } from './unreported-transaction';

/** A write statement on an audited entity's table, made in an audit context, that no entity event has answered yet. */
interface Unheard {
  context: AuditContext;
  table: string;
  /** The transaction depth it was made at: 0 outside a transaction TypeORM reports (committed at once, unless `raw`). */
  depth: number;
  /** Made at depth 0 inside a transaction block TypeORM does not report (`BEGIN` as SQL): held until the block ends. */
  raw: boolean;
  /** The context its count was added to, when counted in `entitiesOmitted` already (outside a transaction: taken back when its event follows). */
  countedOn: AuditContext | undefined;
  /** Its place in the order of writes, for `ROLLBACK TO` a savepoint set before it. */
  order: number;
  /** Answered, ended or rolled back: still in the lists below until they are trimmed. */
  gone: boolean;
}

/**
 * The writes one runner holds, in order, with an index per table, the raw ones and the counted
 * ones: each operation touches only the writes it ends (or trims lists of ended ones, each once),
 * so a client that sends many writes costs linear time, not a scan of all held per write.
 */
interface Held {
  writes: Unheard[];
  live: number;
  byTable: Map<string, Unheard[]>;
  raw: Unheard[];
  rawLive: number;
  counted: Unheard[];
  /** The owner every live counted write was counted on. */
  countedOwner: AuditContext | undefined;
}

/** The tables of the audited entities, per DataSource: each table's name and the schemas it is audited in. */
const auditedTables = new WeakMap<DataSource, ReadonlyMap<string, ReadonlySet<string>>>();
/**
 * Per DataSource, relations a write named that are not an audited entity's table (a view, a
 * partition, a table with a rule), by their name as written (`archive.v` or `v`): the audited
 * tables PostgreSQL may write through each (none for most), as the catalog said when first met.
 */
const relationsByDataSource = new WeakMap<DataSource, Map<string, string[]>>();
/** Relations remembered per DataSource; past it, all are looked up again as met. */
const RELATIONS_LIMIT = 10_000;
const heldByRunner = new WeakMap<QueryRunner, Held>();
/** The order of the last write seen, on any runner. */
let lastOrder = 0;

/**
 * Notes the tables of a DataSource's audited entities, whose writes {@link writesSeen} follows:
 * each in its entity's schema, or the DataSource's, or `public`; names cut to 63 bytes as
 * PostgreSQL cuts them.
 *
 * @example
 * watchAuditedTables(dataSource, [dataSource.getMetadata(Contract)]);
 */
export function watchAuditedTables(dataSource: DataSource, audited: readonly EntityMetadata[]): void {
  const tables = new Map<string, Set<string>>();
  for (const [name, schemas] of auditedTables.get(dataSource) ?? []) tables.set(name, new Set(schemas));
  const fallback = (dataSource.options as { schema?: string } | undefined)?.schema ?? 'public';
  for (const metadata of audited) {
    // PostgreSQL keeps the first 63 bytes of a name, as the SQL reader does of the names it reads.
    const name = nameCut(metadata.tableName);
    const schemas = tables.get(name) ?? new Set<string>();
    schemas.add(nameCut(metadata.schema ?? fallback));
    tables.set(name, schemas);
  }
  auditedTables.set(dataSource, tables);
}

/**
 * The names of the tables in `tables` that are an audited entity's, on `queryRunner`'s DataSource:
 * an unqualified name by its name, a qualified one only in the entity's own schema.
 *
 * @example
 * auditedWrites(queryRunner, [{ schema: 'archive', name: 'contract' }]); // [] when `contract` is audited in `public`
 */
export function auditedWrites(queryRunner: QueryRunner, tables: readonly TableName[]): string[] {
  const audited = auditedTables.get(queryRunner.connection);
  if (!audited) return [];
  const relations = relationsByDataSource.get(queryRunner.connection);
  const written: string[] = [];
  for (const table of tables) {
    if (isAudited(audited, table)) written.push(table.name);
    else {
      // Through a view (or a partition, a rule): one write, on the first audited table found under it.
      const through = relations?.get(relationKey(table));
      if (through && through.length > 0) written.push(through[0]);
    }
  }
  return written;
}

/**
 * The relations the writes among `statements` name (a `PREPARE` too) that are neither an audited
 * entity's table nor looked up yet on `queryRunner`'s DataSource, inside an audit context (none
 * outside one, where no write is counted): see {@link lookUpRelations}.
 *
 * @example
 * unknownRelations(queryRunner, readSql('UPDATE contract_view SET title = $1')); // [{ schema: undefined, name: 'contract_view' }], once
 */
export function unknownRelations(queryRunner: QueryRunner, statements: readonly SqlStatement[]): TableName[] {
  const audited = auditedTables.get(queryRunner.connection);
  if (!audited) return [];
  let unknown: TableName[] | undefined;
  for (const statement of statements) {
    if (statement.kind !== 'write' && statement.kind !== 'prepare') continue;
    const relations = relationsByDataSource.get(queryRunner.connection);
    for (const table of statement.tables)
      if (!isAudited(audited, table) && !relations?.has(relationKey(table))) (unknown ??= []).push(table);
  }
  return unknown && currentAuditContext() ? unknown : [];
}

/**
 * Looks `tables` up in PostgreSQL's catalog on `queryRunner`'s own connection (its search path,
 * and relations it made in its open transaction): the audited entities' tables each may write
 * through, down views (`pg_rewrite`, `pg_depend`; an auto-updatable view writes its base table, a
 * rule its actions' tables) and to the tables a partition or child table belongs to
 * (`pg_inherits`), and remembers them for the DataSource. A name with no relation, or a look-up
 * that fails or takes longer than `timeoutMs`, is not remembered (its write is not counted).
 *
 * @example
 * await lookUpRelations(queryRunner, [{ schema: undefined, name: 'contract_view' }], 5000); // contract_view → ['contract']
 */
export async function lookUpRelations(queryRunner: QueryRunner, tables: readonly TableName[], timeoutMs: number): Promise<void> {
  const client = (queryRunner as unknown as { databaseConnection?: { query?: (text: string, values: unknown[]) => Promise<unknown> } })
    .databaseConnection;
  const audited = auditedTables.get(queryRunner.connection);
  if (typeof client?.query !== 'function' || !audited) return;
  let relations = relationsByDataSource.get(queryRunner.connection);
  if (!relations || relations.size >= RELATIONS_LIMIT) relationsByDataSource.set(queryRunner.connection, (relations = new Map()));
  for (const table of tables) {
    const key = relationKey(table);
    if (relations.has(key)) continue;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = (await Promise.race([
        client.query(RELATIONS_UNDER, [key]),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer')), timeoutMs);
          timer.unref();
        }),
      ])) as { rows?: { schema: string; name: string }[] };
      const rows = answer.rows ?? [];
      if (rows.length === 0) continue;
      const under = rows.slice(1).filter((row) => isAudited(audited, { schema: row.schema, name: row.name }));
      relations.set(key, [...new Set(under.map((row) => row.name))].sort());
    } catch {
      // Not known: looked up again when next met.
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The relation `$1` names (first row), then every relation its rules read and every table it inherits from, down to the end. */
const RELATIONS_UNDER = `WITH RECURSIVE under(oid, depth) AS (
  SELECT to_regclass($1)::oid, 0
  UNION
  SELECT e.parent, 1 FROM under u JOIN (
    SELECT w.ev_class AS child, d.refobjid AS parent FROM pg_rewrite w
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
    UNION ALL SELECT i.inhrelid, i.inhparent FROM pg_inherits i
  ) e ON e.child = u.oid AND e.parent <> u.oid
)
SELECT n.nspname AS schema, c.relname AS name FROM under u JOIN pg_class c ON c.oid = u.oid
  JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY u.depth`;

function isAudited(audited: ReadonlyMap<string, ReadonlySet<string>>, { schema, name }: TableName): boolean {
  const schemas = audited.get(name);
  return schemas !== undefined && (schema === undefined || schemas.has(schema));
}

/** The name as `to_regclass()` reads it, each part quoted. */
function relationKey({ schema, name }: TableName): string {
  const quoted = (part: string) => `"${part.replaceAll('"', '""')}"`;
  return schema === undefined ? quoted(name) : `${quoted(schema)}.${quoted(name)}`;
}

/**
 * Write statements on audited entities' tables (`tables`, see {@link auditedWrites}) that
 * PostgreSQL answered, in an audit context: each waits for the entity event TypeORM sends after
 * it, and is counted on the request or outermost scope the context belongs to (`ownerOf()`).
 * Outside a transaction it is counted in `entitiesOmitted` at once (the event, which follows
 * before the caller resumes, takes it back); inside one, when the outer transaction commits
 * ({@link unheardCommitted}); inside a block TypeORM does not report (`raw`: `BEGIN` sent as
 * SQL), when that block ends ({@link rawWritesEnded}).
 *
 * @example
 * writesSeen(queryRunner, ['contract'], false); // from the query follower: counted unless an event follows
 */
export function writesSeen(queryRunner: QueryRunner, tables: readonly string[], raw: boolean): void {
  if (tables.length === 0) return;
  const context = currentAuditContext();
  if (!context) return;
  const depth = depthOf(queryRunner);
  const inBlock = depth === 0 && raw;
  const owner = ownerOf(context);
  const countedOn = depth === 0 && !inBlock ? owner : undefined;
  if (countedOn) countedOn.omitted += tables.length;
  const held = heldOf(queryRunner);
  // What an earlier request left counted on a long-lived runner is its own: not held any longer.
  if (held.countedOwner !== owner) {
    for (const write of held.counted) drop(held, write);
    held.counted = [];
    held.countedOwner = owner;
  }
  if (inBlock && held.rawLive === 0) watchRawBlock(queryRunner, owner);
  for (const table of tables) {
    const write: Unheard = { context, table, depth, raw: inBlock, countedOn, order: (lastOrder += 1), gone: false };
    held.writes.push(write);
    held.live += 1;
    const same = held.byTable.get(table);
    if (same) same.push(write);
    else held.byTable.set(table, [write]);
    if (inBlock) {
      held.raw.push(write);
      held.rawLive += 1;
    }
    if (countedOn) held.counted.push(write);
  }
  trim(held);
}

/**
 * Where the next write will stand in the order of writes: a savepoint set now keeps it, and
 * `ROLLBACK TO` that savepoint drops the writes from there ({@link unheardRolledBackTo}).
 *
 * @example
 * const mark = unheardMark(); // at SAVEPOINT s
 */
export function unheardMark(): number {
  return lastOrder + 1;
}

/**
 * `ROLLBACK TO` a savepoint: the writes made since `mark` did not happen (a count already made for one is taken back).
 *
 * @example
 * unheardRolledBackTo(queryRunner, mark); // at ROLLBACK TO s
 */
export function unheardRolledBackTo(queryRunner: QueryRunner, mark: number): void {
  const held = heldByRunner.get(queryRunner);
  if (!held) return;
  popWhile(held, (write) => write.order >= mark);
  trim(held);
}

/**
 * Whether `queryRunner` holds writes made in a block TypeORM does not report.
 *
 * @example
 * const holding = rawWritesHeld(queryRunner); // true once a raw block holds a write, until it ends
 */
export function rawWritesHeld(queryRunner: QueryRunner): boolean {
  return (heldByRunner.get(queryRunner)?.rawLive ?? 0) > 0;
}

/**
 * The block TypeORM does not report ended: its writes count when it `committed` (or ended unseen), not when it rolled back.
 *
 * @example
 * rawWritesEnded(queryRunner, false); // ROLLBACK
 */
export function rawWritesEnded(queryRunner: QueryRunner, committed: boolean): void {
  const held = heldByRunner.get(queryRunner);
  if (!held || held.rawLive === 0) return;
  const raw = held.raw;
  held.raw = [];
  for (const write of raw) {
    if (write.gone) continue;
    drop(held, write);
    if (committed) ownerOf(write.context).omitted += 1;
  }
  trim(held);
}

/**
 * An entity event on `metadata`'s table answers every write on that table `queryRunner` made before it.
 *
 * @example
 * writeHeard(queryRunner, dataSource.getMetadata(Contract)); // from afterInsert(), afterUpdate(), …
 */
export function writeHeard(queryRunner: QueryRunner, metadata: EntityMetadata): void {
  const held = heldByRunner.get(queryRunner);
  const same = held?.byTable.get(metadata.tableName);
  if (!held || !same || same.length === 0) return;
  const context = currentAuditContext();
  for (const write of same) {
    if (write.gone) continue;
    // Taken back only in the request it was counted for (a runner can outlive a request).
    if (write.countedOn && write.context === context) write.countedOn.omitted = Math.max(0, write.countedOn.omitted - 1);
    drop(held, write);
  }
  same.length = 0;
  trim(held);
}

/**
 * After a commit: once the outer transaction has committed, each write in it that no event answered is counted.
 *
 * @example
 * unheardCommitted(queryRunner); // from afterTransactionCommit()
 */
export function unheardCommitted(queryRunner: QueryRunner): void {
  if (depthOf(queryRunner) > 0) return;
  const held = heldByRunner.get(queryRunner);
  if (!held) return;
  heldByRunner.delete(queryRunner);
  for (const write of held.writes) if (!write.gone && !write.countedOn) ownerOf(write.context).omitted += 1;
}

/**
 * After a rollback (to `depth`: the depth left, 0 for the whole transaction, which ends a block
 * opened as SQL under it too): its writes did not happen. They are the last held (made since its
 * level began), so they are taken from the end.
 *
 * @example
 * unheardRolledBack(queryRunner); // from afterTransactionRollback()
 */
export function unheardRolledBack(queryRunner: QueryRunner, depth = depthOf(queryRunner)): void {
  const held = heldByRunner.get(queryRunner);
  if (!held) return;
  popWhile(held, (write) => write.depth > depth && !write.countedOn);
  if (depth === 0) {
    for (const write of held.raw) drop(held, write);
    held.raw = [];
  }
  trim(held);
}

/**
 * A COMMIT or ROLLBACK sent as SQL inside a transaction TypeORM reports ended every write held
 * since it began (the last held) and any raw block's: each counts when `committed`. The writes
 * counted already wait for their events as before.
 *
 * @example
 * unheardEndedBySql(queryRunner, true); // manager.query('COMMIT; BEGIN')
 */
export function unheardEndedBySql(queryRunner: QueryRunner, committed: boolean): void {
  const held = heldByRunner.get(queryRunner);
  if (!held) return;
  const ended = (write: Unheard) => {
    if (committed && !write.gone) ownerOf(write.context).omitted += 1;
  };
  popWhile(held, (write) => !write.countedOn, ended);
  for (const write of held.raw) {
    ended(write);
    drop(held, write);
  }
  held.raw = [];
  trim(held);
}

function heldOf(queryRunner: QueryRunner): Held {
  let held = heldByRunner.get(queryRunner);
  if (!held) {
    held = { writes: [], live: 0, byTable: new Map(), raw: [], rawLive: 0, counted: [], countedOwner: undefined };
    heldByRunner.set(queryRunner, held);
  }
  return held;
}

function drop(held: Held, write: Unheard): void {
  if (write.gone) return;
  write.gone = true;
  held.live -= 1;
  if (write.raw) held.rawLive -= 1;
}

/**
 * Takes the last writes while `ends` says so (an ended one on the way too), from every list they
 * are in (each list is in order, so it is that list's last); a count made for one is taken back.
 */
function popWhile(held: Held, ends: (write: Unheard) => boolean, ended?: (write: Unheard) => void): void {
  for (let write = held.writes.at(-1); write && (write.gone || ends(write)); write = held.writes.at(-1)) {
    held.writes.pop();
    const same = held.byTable.get(write.table);
    if (same?.at(-1) === write) same.pop();
    if (held.raw.at(-1) === write) held.raw.pop();
    if (held.counted.at(-1) === write) held.counted.pop();
    if (write.gone) continue;
    if (write.countedOn) write.countedOn.omitted = Math.max(0, write.countedOn.omitted - 1);
    ended?.(write);
    drop(held, write);
  }
}

/** Empties the lists of a runner that holds nothing, and rebuilds its lists once they are mostly ended writes (each write is copied a bounded number of times). */
function trim(held: Held): void {
  if (held.live === 0) {
    // Emptied in place: a runner that writes again soon (the common case) allocates nothing.
    if (held.writes.length > 0) held.writes.length = 0;
    if (held.byTable.size > 0) held.byTable.clear();
    held.raw.length = 0;
    held.counted.length = 0;
    return;
  }
  if (held.writes.length <= 2 * held.live + 64) return;
  const live = held.writes.filter((write) => !write.gone);
  held.writes = live;
  held.byTable = new Map();
  for (const write of live) {
    const same = held.byTable.get(write.table);
    if (same) same.push(write);
    else held.byTable.set(write.table, [write]);
  }
  held.raw = live.filter((write) => write.raw);
  held.counted = live.filter((write) => write.countedOn);
}

/** Before `owner`'s changes are taken: a block that ended unseen (through the driver) counts its writes. */
function watchRawBlock(queryRunner: QueryRunner, owner: AuditContext): void {
  const settle = () => {
    if (depthOf(queryRunner) === 0 && unreportedBlockOpen(queryRunner) === false) rawWritesEnded(queryRunner, true);
    // Still open: asked again at the next take.
    if (rawWritesHeld(queryRunner)) (owner.blocks ??= []).push(settle);
  };
  (owner.blocks ??= []).push(settle);
}

/** TypeORM keeps the savepoint depth in a protected field (1 without it); 0 once `pg` says SQL ended TypeORM's block (see `transaction-changes.ts`). */
function depthOf(queryRunner: QueryRunner): number {
  if (!queryRunner.isTransactionActive || unreportedBlockOpen(queryRunner) === false) return 0;
  return (queryRunner as unknown as { transactionDepth?: number }).transactionDepth ?? 1;
}
