import { type KeyObject } from 'node:crypto';
import { type Client } from 'pg';
import { quoteTablePath } from '../audit-insert-sql';
import { type ResolvedEntryKey } from './entry-auth';
import { type EntryAuthReport, EntryChecks } from './entry-checks';
import { type ErasureReport, PERSONAL_CHECK_SQL, PersonalChecks } from '../privacy/personal-checks';
import { merkleRoot } from './merkle';
import { compareKeys, keyRange, LEAF_FIELDS, LEAF_SQL, type RowKey, type SortKey } from './row-encoding';
import { ROW_PROBLEM_SQL } from './row-validity';
import { PIN_SEARCH_PATH_SQL, qualifiedTable } from './search-path';
import { GENESIS_HASH, keyIdOf, MANIFEST_ENTRY_BYTES, readManifest, type Seal, sealHash, verifySeal } from './seal';
import { SEAL_COLUMNS_SQL, sealTableOf, toSeal } from './seal-store';
import { checkMonths, loadRetention, type RetentionFindings } from './retention-checks';
import { type WitnessedSeal } from './witness';
import { hasBit, type RetainedRows } from '../lifecycle/checkpoint';

/**
 * Kinds of anomaly `audit-verify` reports; see docs/INTEGRITY.md for each.
 *
 * @example
 * const counts = Object.fromEntries(ANOMALY_KINDS.map((kind) => [kind, report.anomalies.filter((a: Anomaly) => a.kind === kind).length]));
 */
export const ANOMALY_KINDS = [
  'row_changed',
  'row_missing',
  'row_forged',
  'row_invalid',
  'seal_changed',
  'seal_missing',
  'seal_out_of_chain',
  'seal_witness_mismatch',
  'seal_signature_invalid',
  'month_dropped',
  'row_personal_changed',
  'row_erased_unaccounted',
] as const;
/**
 * One of {@link ANOMALY_KINDS}.
 *
 * @example
 * const kind: AnomalyKind = 'row_changed';
 */
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/**
 * One finding: a row (by id) or a seal (by seq), with what was found.
 *
 * @example
 * for (const anomaly of report.anomalies as Anomaly[]) console.log(anomaly.kind, anomaly.row ?? anomaly.seal);
 */
export interface Anomaly {
  kind: AnomalyKind;
  row?: string;
  seal?: number;
  /** A month (`YYYY-MM`) of the partitioned table. */
  month?: string;
  detail: string;
}

/** What {@link verifyTrail} checks against, beyond the tables themselves. */
export interface VerifyOptions {
  /** `schema.table` of the audit log (default `audit_log`); a table without a schema is in `public`, whatever the role's `search_path`. */
  table?: string;
  /**
   * Only the rows of seals made in this range are read and hashed (ms since the epoch); the chain,
   * the witness and the rows after the newest seal are always checked whole.
   */
  from?: number;
  to?: number;
  witness?: Map<number, WitnessedSeal[]>;
  publicKey?: KeyObject;
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
}

/**
 * The result: counts, and the anomalies (the first 100 000; `anomalyCount` counts them all).
 *
 * @example
 * const report: VerifyReport = await verifyTrail(client);
 * if (report.anomalyCount > 0) process.exitCode = 1;
 */
export interface VerifyReport {
  rowsVerified: number;
  sealsVerified: number;
  /** Rows after the newest seal: not sealed yet. */
  rowsUnsealed: number;
  anomalies: Anomaly[];
  anomalyCount: number;
  byKind: Record<AnomalyKind, number>;
  /** Entry authentication: checked or not, the boundary, and the rows authentic or written before it. */
  entryAuth: EntryAuthReport;
  /** Retention checkpoints in the chain: how many, the months they removed and their rows. */
  retention: { checkpoints: number; months: string[]; rows: number };
  /** Rows whose personal values were erased, and the `audit_erasure` entries in the trail. */
  erasure: ErasureReport;
}

/** Rows a cursor returns at a time. */
const FETCH = 10_000;
/** Anomalies kept in the report; more are counted only. */
const KEPT = 100_000;
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
      const done = checkChunk(worker, table, ready, entries, retention.retained, personal).finally(() => idle.push(worker));
      // Awaited in merge(); marked handled so that a failure while others run is not an unhandled rejection.
      done.catch(() => undefined);
      started.push(done);
      queue.push({ done, found: ready.found, job: true });
    };
    let previous: Seal | null = null;
    let expectedSeq = 1;
    const seen = new Set<number>();
    for (let after = 0; ;) {
      const { rows } = await client.query(
        `SELECT ${SEAL_COLUMNS_SQL} FROM ${sealTableOf(table)} AS s WHERE s.seq > $1 ORDER BY s.seq LIMIT 8`,
        [after],
      );
      if (rows.length === 0) break;
      for (const row of rows as Record<string, unknown>[]) {
        const seal = toSeal(row);
        after = seal.seq;
        seen.add(seal.seq);
        const sealFound: Anomaly[] = [];
        for (let missing = expectedSeq; missing < seal.seq && missing < expectedSeq + 1000; missing++) {
          sealFound.push({ kind: 'seal_missing', seal: missing, detail: 'absent from audit_seal: the chain skips it' });
        }
        checkSeal(seal, previous, options, (a) => sealFound.push(a));
        entries.seal(seal, (a) => sealFound.push(a));
        if (isCheckpoint(seal, previous)) {
          // A retention checkpoint seals no row: it is checked as a link of the chain only.
          await dispatch();
          queue.push({ done: Promise.resolve(0), found: [sealFound], job: false });
          previous = seal;
          expectedSeq = seal.seq + 1;
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
        previous = seal;
        expectedSeq = seal.seq + 1;
      }
    }
    await dispatch();
    while (queue.length > 0) await merge();
    // Whatever --from and --to say: a seal cut off after --to is a truncation, named here.
    for (const [seq, witnessed] of options.witness ?? []) {
      if (seen.has(seq)) continue;
      const w = witnessed[0];
      found.push({
        kind: 'seal_missing',
        seal: seq,
        detail: `in the witness (${w.rows} rows, last row ${w.lastId}) but not in audit_seal`,
      });
    }
    report.rowsUnsealed = await checkTail(client, table, previous, entries, personal, (a) => found.push(a));
    await personal.finish(client, table, (a) => found.push(a));
    const missing = found.filter((a) => a.kind === 'row_missing').length;
    await checkMonths(client, table, retention, missing, (a) => found.push(a));
  } catch (error) {
    throw await firstCause(error, started);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    for (const worker of workers) if (worker !== client) await worker.end().catch(() => undefined);
  }
  const { checkpoints, months, rows } = retention;
  return finish({ ...report, entryAuth: entries.report, retention: { checkpoints, months, rows }, erasure: personal.report }, found);
}

/**
 * A retention checkpoint: it says so, seals no row and ends where the seal before it ends. A seal
 * changed to say so (its hash then fails) is checked as the seal it was, its rows and all.
 */
function isCheckpoint(seal: Seal, previous: Seal | null): boolean {
  return !!seal.retention && seal.rowCount === 0 && !!previous && previous.lastTx === seal.lastTx && previous.lastId === seal.lastId;
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

function checkSeal(seal: Seal, previous: Seal | null, options: VerifyOptions, add: (a: Anomaly) => void): void {
  if (!Number.isFinite(seal.sealedAt)) {
    add({ kind: 'seal_changed', seal: seal.seq, detail: 'its sealed_at is not a finite time, so its fields do not match its hash' });
  } else if (!sealHash(seal).equals(seal.hash)) add({ kind: 'seal_changed', seal: seal.seq, detail: 'its fields do not match its hash' });
  const expectedPrev = previous && previous.seq === seal.seq - 1 ? previous.hash : seal.seq === 1 ? GENESIS_HASH : null;
  if (expectedPrev && !expectedPrev.equals(seal.prevHash)) {
    add({ kind: 'seal_out_of_chain', seal: seal.seq, detail: `its previous hash is not seal ${seal.seq - 1}'s hash` });
  }
  const hex = seal.hash.toString('hex');
  const witnessed = options.witness?.get(seal.seq);
  const next = options.witness?.get(seal.seq + 1);
  if (witnessed?.some((w) => w.hash !== hex) || next?.some((w) => w.prevHash !== hex)) {
    const told = [...new Set([...(witnessed ?? []).map((w) => w.hash), ...(next ?? []).map((w) => w.prevHash)])];
    add({
      kind: 'seal_witness_mismatch',
      seal: seal.seq,
      detail: `hash ${hex.slice(0, 16)}…, the witness has ${told.map((h) => `${h.slice(0, 16)}…`).join(', ')}`,
    });
  }
  if (options.publicKey) {
    const problem = !seal.signature
      ? 'it is not signed'
      : seal.keyId !== keyIdOf(options.publicKey)
        ? `signed with key ${seal.keyId}, not ${keyIdOf(options.publicKey)}`
        : !verifySeal(seal.hash, seal.signature, options.publicKey)
          ? 'the signature does not verify'
          : null;
    if (problem) add({ kind: 'seal_signature_invalid', seal: seal.seq, detail: problem });
  }
}

/** A row of a chunk: its key, its leaf hash, and the finding of its entry check if it failed. */
interface LeafRow extends SortKey {
  leaf: Buffer;
  /** Why the row can never be sealed (a timestamp out of range), or null. */
  problem: string | null;
  forged?: Anomaly | null;
}

/** The entry checks' findings of `rows[from]` up to `rows[to]`, for rows the seal check did not name already. */
function addForged(rows: LeafRow[], from: number, to: number, found: Anomaly[]): void {
  let named: Set<string | undefined> | undefined;
  for (let i = from; i < to; i++) {
    const anomaly = rows[i].forged;
    if (!anomaly) continue;
    named ??= new Set(found.map((a) => a.row));
    if (!named.has(anomaly.row)) found.push(anomaly);
  }
}

/** Reads a chunk's rows, hashes them, sorts them into their seals and checks each seal; returns the rows read. */
async function checkChunk(
  client: Client,
  table: string,
  chunk: Chunk,
  entries: EntryChecks,
  retained: RetainedRows,
  personal: PersonalChecks,
): Promise<number> {
  const last = chunk.seals[chunk.seals.length - 1];
  const rows: LeafRow[] = [];
  const changed: Anomaly[] = [];
  // Leaves are hashed by the server, in no particular order: 32 bytes a row travel, and the sort is here.
  const extraSql = entries.columns(true) + PERSONAL_CHECK_SQL;
  await forEachRow(client, table, 'leaves', chunk.after, { tx: last.lastTx, id: last.lastId }, extraSql, (row) => {
    const [id, tx, problem, leaf, ...extra] = row as [string, string | null, string | null, Buffer, ...unknown[]];
    const key = tx === null ? null : BigInt(tx);
    const personalFound = personal.judge(id, extra.pop());
    if (personalFound) changed.push(personalFound);
    rows.push({ id, tx: key, leaf, problem, forged: entries.judge(id, key, extra) });
  });
  chunk.found[chunk.seals.length - 1].push(...changed);
  rows.sort(compareKeys);
  let from = 0;
  chunk.seals.forEach((seal, i) => {
    const end: SortKey = { tx: seal.lastTx === null ? null : BigInt(seal.lastTx), id: seal.lastId };
    let to = from;
    while (to < rows.length && compareKeys(rows[to], end) <= 0) to++;
    checkRows(seal, rows, from, to, (a) => chunk.found[i].push(a), retained.get(seal.seq));
    addForged(rows, from, to, chunk.found[i]);
    from = to;
  });
  // The query's range ends at the last seal's last row, so none can be left; if one were, it is named, never skipped.
  addForged(rows, from, rows.length, chunk.found[chunk.seals.length - 1]);
  for (const { id } of rows.slice(from)) {
    chunk.found[chunk.seals.length - 1].push({
      kind: 'row_forged',
      row: id,
      detail: `in the range of seal ${last.seq} but after its last row`,
    });
  }
  return rows.length;
}

/** Checks one seal's rows (`rows[from]` up to `rows[to]`, in sealing order) against its manifest and root. */
function checkRows(seal: Seal, rows: LeafRow[], from: number, to: number, add: (a: Anomaly) => void, retained?: Buffer): void {
  // Rows the seal left out (forged ones) are named, and the root is checked over the rows it sealed.
  const inOrder = matchesInOrder(seal.manifest, rows, from, to);
  // Sealed as they are (by a version that sealed them): still named, such a row is never valid.
  for (let i = from; inOrder && i < to; i++) {
    if (rows[i].problem) add({ kind: 'row_invalid', row: rows[i].id, detail: `${rows[i].problem} (sealed by seal ${seal.seq})` });
  }
  const sealed: Buffer[] = [];
  const rowProblems = inOrder ? 0 : checkAgainstManifest(seal, rows, from, to, add, sealed, retained);
  const leaves = inOrder ? rows.slice(from, to).map((row) => row.leaf) : sealed;
  if (rowProblems === 0 && !merkleRoot(leaves).equals(seal.root)) {
    add({ kind: 'seal_changed', seal: seal.seq, detail: 'its Merkle root does not match its rows' });
  }
}

/**
 * Names each row the seal did not seal, sealed otherwise, or sealed and gone (unless a retention
 * checkpoint removed it: its bit in `retained`); returns how many were changed or gone (removed
 * ones too: the root cannot be computed without them), and puts the leaves of the rows it sealed in `sealed`.
 */
function checkAgainstManifest(
  seal: Seal,
  rows: LeafRow[],
  from: number,
  to: number,
  add: (a: Anomaly) => void,
  sealed: Buffer[],
  retained?: Buffer,
): number {
  const manifest = readManifest(seal.manifest);
  let rowProblems = 0;
  for (let i = from; i < to; i++) {
    const { id, leaf, problem } = rows[i];
    const at = manifest.get(id);
    if (at === undefined) {
      // Left out of the seal: a row that can never be sealed, or one the sealer refused (forged).
      if (problem) add({ kind: 'row_invalid', row: id, detail: `${problem}: never sealed (in the range of seal ${seal.seq})` });
      else add({ kind: 'row_forged', row: id, detail: `in the range of seal ${seal.seq} but not sealed by it` });
    } else {
      manifest.delete(id);
      sealed.push(leaf);
      if (leaf.compare(seal.manifest, at, at + 8, 0, 8) !== 0) {
        rowProblems += 1;
        add({ kind: 'row_changed', row: id, detail: `differs from what seal ${seal.seq} sealed${problem ? `: ${problem}` : ''}` });
      } else if (problem) {
        add({ kind: 'row_invalid', row: id, detail: `${problem} (sealed by seal ${seal.seq})` });
      }
    }
  }
  for (const [id, at] of manifest) {
    if (hasBit(retained, (at - 16) / MANIFEST_ENTRY_BYTES)) continue;
    add({ kind: 'row_missing', row: id, detail: `sealed by seal ${seal.seq}, no longer in the table` });
  }
  return rowProblems + manifest.size;
}

/**
 * Whether the rows are the manifest's, one for one and in its order (the order they were sealed
 * in), each with the leaf-hash prefix sealed: the untouched seal, checked without building a map.
 */
function matchesInOrder(manifest: Buffer, rows: LeafRow[], from: number, to: number): boolean {
  if ((to - from) * MANIFEST_ENTRY_BYTES !== manifest.length) return false;
  for (let i = from, at = 0; i < to; i++, at += MANIFEST_ENTRY_BYTES) {
    const { id, leaf } = rows[i];
    if (!sameUuid(id, manifest.toString('hex', at, at + 16)) || leaf.compare(manifest, at + 16, at + 24, 0, 8) !== 0) return false;
  }
  return true;
}

/** Whether a canonical UUID text and 32 hex digits name the same id. */
function sameUuid(uuid: string, hex: string): boolean {
  if (uuid.length !== 36) return false;
  for (let u = 0, h = 0; u < 36; u++) {
    if (u === 8 || u === 13 || u === 18 || u === 23) continue;
    if (uuid.charCodeAt(u) !== hex.charCodeAt(h++)) return false;
  }
  return true;
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
  entries: EntryChecks,
  personal: PersonalChecks,
  add: (a: Anomaly) => void,
): Promise<number> {
  let count = 0;
  const horizon = last ? BigInt(last.horizon) : 0n;
  const [{ next }] = (await client.query<{ next: string }>('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS next')).rows;
  const future = BigInt(next);
  const what = entries.needsLeafFields ? 'leaves' : 'keys';
  const extraSql = entries.columns(what === 'leaves') + PERSONAL_CHECK_SQL;
  await forEachRow(client, table, what, last && { tx: last.lastTx, id: last.lastId }, null, extraSql, (row) => {
    const [id, tx, problem, ...rest] = row as [string, string | null, string | null, ...unknown[]];
    const key = tx === null ? null : BigInt(tx);
    const personalFound = personal.judge(id, rest.pop());
    if (personalFound) add(personalFound);
    const backdated = key === null ? !!last && (last.lastTx !== null || horizon > 0n) : key < horizon;
    const forged = entries.judge(id, key, what === 'leaves' ? rest.slice(1) : rest);
    if (backdated) add({ kind: 'row_forged', row: id, detail: `after the newest seal but older than its horizon` });
    else if (key !== null && key >= future) {
      add({
        kind: 'row_forged',
        row: id,
        detail: `its transaction id ${tx} is from the future (no transaction has had one from ${next} on)`,
      });
    } else if (problem) add({ kind: 'row_invalid', row: id, detail: `${problem}: never sealed` });
    else if (forged) add(forged);
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

function emptyReport(): VerifyReport {
  const byKind = Object.fromEntries(ANOMALY_KINDS.map((k) => [k, 0])) as Record<AnomalyKind, number>;
  const entryAuth = { checked: false, boundary: null, authentic: 0, beforeAuthentication: 0, unchecked: 0 };
  const retention = { checkpoints: 0, months: [], rows: 0 };
  const erasure = { erasedRows: 0, erasureEntries: 0 };
  return { rowsVerified: 0, sealsVerified: 0, rowsUnsealed: 0, anomalies: [], anomalyCount: 0, byKind, entryAuth, retention, erasure };
}

/** A row reported missing from one seal and forged in another is one row whose position (`tx`) was changed. */
function finish(report: VerifyReport, found: Anomaly[]): VerifyReport {
  const missing = new Set(found.filter((a) => a.kind === 'row_missing').map((a) => a.row));
  const moved = new Set(found.filter((a) => a.kind === 'row_forged' && missing.has(a.row)).map((a) => a.row));
  for (const anomaly of found) {
    if (anomaly.row !== undefined && moved.has(anomaly.row)) {
      if (anomaly.kind === 'row_missing') continue;
      if (anomaly.kind === 'row_forged')
        Object.assign(anomaly, { kind: 'row_changed', detail: `moved out of its seal (${anomaly.detail})` });
    }
    report.anomalyCount += 1;
    report.byKind[anomaly.kind] += 1;
    if (report.anomalies.length < KEPT) report.anomalies.push(anomaly);
  }
  return report;
}
