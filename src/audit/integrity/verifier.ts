import { type KeyObject } from 'node:crypto';
import { type Client } from 'pg';
import { quoteTablePath } from '../audit-insert-sql';
import { type ResolvedEntryKey } from './entry-auth';
import { EntryChecks } from './entry-checks';
import { ErasureCoverage } from '../privacy/erasure-coverage';
import { PERSONAL_CHECK_SQL, PersonalChecks } from '../privacy/personal-checks';
import { keyRange, LEAF_FIELDS, LEAF_SQL, type RowKey } from './row-encoding';
import { ROW_PROBLEM_SQL } from './row-validity';
import { PIN_SEARCH_PATH_SQL, qualifiedTable } from './search-path';
import { type Seal } from './seal';
import { SEAL_COLUMNS_SQL, sealTableOf, toSeal } from './seal-store';
import { checkMonths, loadRetention, type RetentionFindings } from './retention-checks';
import {
  type Anomaly,
  checkSealedRows,
  emptyReport,
  finishReport,
  judgeTailRow,
  type LeafRow,
  SealChain,
  type SealChecks,
  type VerifyReport,
} from './verify-checks';
import { type RetainedRows } from '../lifecycle/checkpoint';

export { ANOMALY_KINDS, type Anomaly, type AnomalyKind, type VerifyReport } from './verify-checks';

/** What {@link verifyTrail} checks against, beyond the tables themselves. */
export interface VerifyOptions extends SealChecks {
  /** `schema.table` of the audit log (default `audit_log`); a table without a schema is in `public`, whatever the role's `search_path`. */
  table?: string;
  /**
   * Only the rows of seals made in this range are read and hashed (ms since the epoch); the chain,
   * the witness and the rows after the newest seal are always checked whole.
   */
  from?: number;
  to?: number;
  /**
   * More connections for checking seals' rows in parallel (`jobs` at most, default 1, opened as
   * chunks need them), each reading the same snapshot as `client`: the server hashes rows on as
   * many cores.
   */
  connect?: () => Promise<Client>;
  jobs?: number;
  /** Rows read by one query: consecutive seals are checked together up to this many (a larger seal alone). Default 50 000. */
  chunkRows?: number;
  /** The entry keys (integrity's `entryKeys`): every row's code is checked, sealed or not. Without them, only whether a row has one. */
  entryKeys?: readonly ResolvedEntryKey[];
  /**
   * The pseudonym key (`privacy.pseudonymKey`), when erasures name their subjects under it: with it
   * (or with the entry key they were made under) rows an erasure should have taken are looked for.
   */
  pseudonymKey?: KeyObject | null;
}

/** Rows a cursor returns at a time. */
const FETCH = 10_000;
/** Rows one query reads, by default: consecutive seals are checked together up to this many. */
const CHUNK_ROWS = 50_000;

/** Consecutive seals whose rows one query reads: the range after `after` up to the last seal's last row. */
interface Chunk {
  after: RowKey | null;
  seals: Seal[];
  /** Per seal, in order: its findings (the seal's own first, then its rows'). */
  found: Anomaly[][];
  rows: number;
}

/** Findings in seal order: a chunk's check still running, or findings already made. */
interface Queued {
  done: Promise<number>;
  found: Anomaly[][];
  job: boolean;
}

/**
 * Checks the audit log against its seals (and the witness and public key when given), reading in
 * one repeatable-read snapshot. Rows are read through a cursor a chunk of seals at a time (about
 * 50 000 rows, or one larger seal), hashed by the server and sorted here into their seals: memory
 * stays within `jobs` chunks whatever the table's size.
 *
 * @example
 * const report = await verifyTrail(client, { witness: await readWitness(['export.log'], 'audit/audit_log'), publicKey });
 * report.anomalyCount; // 0 when clean
 */
export async function verifyTrail(client: Client, options: VerifyOptions = {}): Promise<VerifyReport> {
  const table = qualifiedTable(options.table ?? 'audit_log');
  const report = emptyReport();
  const found: Anomaly[] = [];
  const workers: Client[] = [];
  const entries = new EntryChecks(options.entryKeys ?? null);
  let retention: RetentionFindings = { checkpoints: 0, months: [], rows: 0, retained: new Map() };
  const personal = new PersonalChecks();
  await prepareTable(client, table);
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  // Every chunk's outcome, in order: a failure is reported by its first cause (see firstCause).
  const started: Promise<number>[] = [];
  try {
    await client.query(PIN_SEARCH_PATH_SQL);
    // Rows removed by retention, known before any seal's rows are checked.
    retention = await loadRetention(client, sealTableOf(table));
    const coverage = await ErasureCoverage.load(client, table, [
      ...(options.entryKeys ?? []).map((k) => k.key),
      ...(options.pseudonymKey ? [options.pseudonymKey] : []),
    ]);
    if (coverage.unchecked > 0) personal.report.uncheckedEntries = coverage.unchecked;
    const judgePersonal: PersonalJudge = (id, tx, text) =>
      [personal.judge(id, text), coverage.judge(id, tx, text)].filter((a): a is Anomaly => a !== null);
    const jobs = options.connect ? Math.max(1, options.jobs ?? 1) : 1;
    const chunkRows = Math.max(1, options.chunkRows ?? CHUNK_ROWS);
    const connect = jobs > 1 ? options.connect : undefined;
    let snapshot = '';
    if (connect) {
      const [row] = (await client.query<{ snapshot: string }>('SELECT pg_export_snapshot() AS snapshot')).rows;
      snapshot = row.snapshot.replace(/[^0-9A-F-]/gi, '');
    } else {
      workers.push(client);
    }
    const idle = [...workers];
    /** A connection for the next chunk: an idle one, or a new one on the same snapshot (`jobs` at most). */
    const take = async (): Promise<Client> => {
      const worker = idle.pop();
      if (worker || !connect) return worker as Client;
      const fresh = await connect();
      workers.push(fresh);
      await fresh.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await fresh.query(`SET TRANSACTION SNAPSHOT '${snapshot}'`);
      await fresh.query(PIN_SEARCH_PATH_SQL);
      return fresh;
    };
    // Chunks are checked `jobs` at a time; findings are merged in seal order, as if checked one by one.
    const queue: Queued[] = [];
    const merge = async () => {
      const oldest = queue.shift() as Queued;
      report.rowsVerified += await oldest.done;
      for (const sealFound of oldest.found) found.push(...sealFound);
    };
    let chunk: Chunk | null = null;
    const dispatch = async () => {
      if (!chunk) return;
      const ready = chunk;
      chunk = null;
      while (queue.filter((q) => q.job).length >= jobs) await merge();
      const worker = await take();
      const done = checkChunk(worker, table, ready, entries, retention.retained, judgePersonal).finally(() => idle.push(worker));
      // Awaited in merge(); marked handled so that a failure while others run is not an unhandled rejection.
      done.catch(() => undefined);
      started.push(done);
      queue.push({ done, found: ready.found, job: true });
    };
    const chain = new SealChain(options, entries);
    for (let after = 0; ;) {
      const { rows } = await client.query(
        `SELECT ${SEAL_COLUMNS_SQL} FROM ${sealTableOf(table)} AS s WHERE s.seq > $1 ORDER BY s.seq LIMIT 8`,
        [after],
      );
      if (rows.length === 0) break;
      for (const row of rows as Record<string, unknown>[]) {
        const seal = toSeal(row);
        after = seal.seq;
        const { found: sealFound, checkpoint, previous } = chain.next(seal);
        if (checkpoint) {
          // A retention checkpoint seals no row: it is checked as a link of the chain only.
          await dispatch();
          queue.push({ done: Promise.resolve(0), found: [sealFound], job: false });
          continue;
        }
        // A seal whose time is not finite (changed) is checked whatever --from and --to say.
        const inRange =
          Number.isNaN(seal.sealedAt) || ((options.from ?? -Infinity) <= seal.sealedAt && seal.sealedAt <= (options.to ?? Infinity));
        if (inRange) {
          if (chunk && chunk.rows + seal.rowCount > chunkRows) await dispatch();
          chunk ??= { after: previous && { tx: previous.lastTx, id: previous.lastId }, seals: [], found: [], rows: 0 };
          chunk.seals.push(seal);
          chunk.found.push(sealFound);
          chunk.rows += seal.rowCount;
          report.sealsVerified += 1;
        } else {
          await dispatch();
          queue.push({ done: Promise.resolve(0), found: [sealFound], job: false });
        }
      }
    }
    await dispatch();
    while (queue.length > 0) await merge();
    // Whatever --from and --to say: a seal cut off after --to is a truncation, named here.
    found.push(...chain.unwitnessed('audit_seal'));
    report.rowsUnsealed = await checkTail(client, table, chain.previous, chain.trusted, entries, judgePersonal, (a) => found.push(a));
    const forged = new Set(found.flatMap((a) => (a.kind === 'row_forged' && a.row !== undefined ? [a.row] : [])));
    await personal.finish(client, table, (a) => found.push(a), { forged, whole: options.from === undefined && options.to === undefined });
    const missing = found.filter((a) => a.kind === 'row_missing').length;
    await checkMonths(client, table, retention, missing, (a) => found.push(a));
  } catch (error) {
    throw await firstCause(error, started);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    for (const worker of workers) if (worker !== client) await worker.end().catch(() => undefined);
  }
  const { checkpoints, months, rows } = retention;
  return finishReport({ ...report, entryAuth: entries.report, retention: { checkpoints, months, rows }, erasure: personal.report }, found);
}

/**
 * The error to report for a failed check: `error`, unless it is PostgreSQL's "current transaction
 * is aborted" (25P02), which only follows the real cause; then the first chunk's failure that is not.
 */
async function firstCause(error: unknown, started: Promise<number>[]): Promise<unknown> {
  const settled = await Promise.allSettled(started);
  const failures = [error, ...settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []))];
  return failures.find((e) => (e as { code?: unknown } | null)?.code !== ABORTED) ?? error;
}

/** SQLSTATE of "current transaction is aborted, commands ignored until end of transaction block". */
const ABORTED = '25P02';

/**
 * Index maintenance autovacuum would do, so that each chunk's query reads its own block ranges,
 * not the whole table: summarizes the ranges of the BRIN index on `tx` filled since autovacuum
 * last did, and gathers the table's statistics if it has never had any (without them PostgreSQL
 * does not know a chunk's range is narrow). Only the table's owner may: any other role skips it.
 */
async function prepareTable(client: Client, table: string): Promise<void> {
  const relation = quoteTablePath(table);
  await client
    .query(
      `SELECT pg_catalog.brin_summarize_new_values(i.indexrelid)
       FROM pg_catalog.pg_index AS i
       JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
       JOIN pg_catalog.pg_am AS a ON a.oid OPERATOR(pg_catalog.=) c.relam
       WHERE i.indrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND a.amname OPERATOR(pg_catalog.=) 'brin'`,
      [relation],
    )
    .catch(() => undefined);
  const { rows } = await client.query<{ never: boolean }>(
    `SELECT last_analyze IS NULL AND last_autoanalyze IS NULL AS never FROM pg_catalog.pg_stat_all_tables
     WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass`,
    [relation],
  );
  if (rows[0]?.never) await client.query(`ANALYZE ${relation}`).catch(() => undefined);
}

/** The checks of one row's personal values (its `PERSONAL_CHECK_SQL` text): against their commitments, and against its subject's erasures. */
type PersonalJudge = (id: string, tx: bigint | null, text: unknown) => Anomaly[];

/** Reads a chunk's rows, hashes them, sorts them into their seals and checks each seal; returns the rows read. */
async function checkChunk(
  client: Client,
  table: string,
  chunk: Chunk,
  entries: EntryChecks,
  retained: RetainedRows,
  judgePersonal: PersonalJudge,
): Promise<number> {
  const last = chunk.seals[chunk.seals.length - 1];
  const rows: LeafRow[] = [];
  const changed: Anomaly[] = [];
  // Leaves are hashed by the server, in no particular order: 32 bytes a row travel, and the sort is here.
  const extraSql = entries.columns(true) + PERSONAL_CHECK_SQL;
  await forEachRow(client, table, 'leaves', chunk.after, { tx: last.lastTx, id: last.lastId }, extraSql, (row) => {
    const [id, tx, problem, leaf, ...extra] = row as [string, string | null, string | null, Buffer, ...unknown[]];
    const key = tx === null ? null : BigInt(tx);
    changed.push(...judgePersonal(id, key, extra.pop()));
    rows.push({ id, tx: key, leaf, problem, forged: entries.judge(id, key, extra) });
  });
  chunk.found[chunk.seals.length - 1].push(...changed);
  checkSealedRows(chunk.seals, rows, chunk.found, retained);
  return rows.length;
}

/**
 * Rows after the newest seal; returns how many may still be sealed. Named instead: a row below
 * the seal's horizon (or without a transaction id after the first rows), with a transaction id
 * no transaction has had yet, or whose entry check fails (forged), and a row that can never be
 * sealed (invalid).
 */
async function checkTail(
  client: Client,
  table: string,
  last: Seal | null,
  trusted: Seal | null,
  entries: EntryChecks,
  judgePersonal: PersonalJudge,
  add: (a: Anomaly) => void,
): Promise<number> {
  let count = 0;
  const [{ next }] = (await client.query<{ next: string }>('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS next')).rows;
  const what = entries.needsLeafFields ? 'leaves' : 'keys';
  const extraSql = entries.columns(what === 'leaves') + PERSONAL_CHECK_SQL;
  await forEachRow(client, table, what, last && { tx: last.lastTx, id: last.lastId }, null, extraSql, (row) => {
    const [id, tx, problem, ...rest] = row as [string, string | null, string | null, ...unknown[]];
    const key = tx === null ? null : BigInt(tx);
    for (const anomaly of judgePersonal(id, key, rest.pop())) add(anomaly);
    const forged = entries.judge(id, key, what === 'leaves' ? rest.slice(1) : rest);
    const anomaly = judgeTailRow({ id, tx, problem, forged }, last, next, trusted);
    if (anomaly) add(anomaly);
    else count += 1;
  });
  return count;
}

/**
 * Selects the rows after `after` up to `upTo` through a cursor, in no particular order: their
 * keys (`id`, `tx`) and why they cannot be sealed (or null), and with `leaves` their leaf hashes too.
 */
async function forEachRow(
  client: Client,
  table: string,
  what: 'keys' | 'leaves',
  after: RowKey | null,
  upTo: RowKey | null,
  extra: string,
  each: (row: unknown[]) => void,
): Promise<void> {
  const { where, parameters } = keyRange(after, upTo);
  const select =
    what === 'leaves'
      ? `l.id::text, l.tx::text, ${ROW_PROBLEM_SQL}, ${LEAF_SQL}${extra} FROM ${quoteTablePath(table)} AS l, ${LEAF_FIELDS}`
      : `l.id::text, l.tx::text, ${ROW_PROBLEM_SQL}${extra} FROM ${quoteTablePath(table)} AS l`;
  await client.query(`DECLARE verify_rows NO SCROLL CURSOR FOR SELECT ${select} WHERE ${where}`, parameters);
  const fetch = () => {
    const fetched = client.query<unknown[]>({ text: `FETCH ${FETCH} FROM verify_rows`, rowMode: 'array' });
    // A read ahead may fail while an earlier failure is being reported: that one counts, not this.
    fetched.catch(() => undefined);
    return fetched;
  };
  // One batch read ahead: the server selects the next rows while these are checked here.
  for (let next = fetch(); ;) {
    const { rows } = await next;
    if (rows.length === FETCH) next = fetch();
    rows.forEach(each);
    if (rows.length < FETCH) break;
  }
  // Only after success: after a failure the transaction is aborted, and CLOSE would fail in its stead.
  await client.query('CLOSE verify_rows');
}
