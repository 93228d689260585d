import { type KeyObject } from 'node:crypto';
import { quoteTablePath } from '../audit-insert-sql';
import { LEGACY_MARK_PREFIX, retentionMonthSql } from '../lifecycle/legacy-range';
import { PERSONAL_VALUES_SQL, personalProblem } from '../privacy/personal-verdict';
import { merkleRoot } from './merkle';
import {
  type ForgedRow,
  entryKeysMissingError,
  judgeSealRows,
  type ResolvedEntryKey,
  SEAL_ENTRY_COLUMNS,
  unknownKeyOf,
} from './entry-auth';
import { keyRange, LEAF_FIELDS, LEAF_FIELDS_BEFORE_COMMITMENTS, LEAF_SQL, type RowKey } from './row-encoding';
import { SEALABLE_ROW_SQL } from './row-validity';
import { checkNewestSeal } from './seal-trust';
import { PIN_SEARCH_PATH_SQL, resolveTable } from './search-path';
import { GENESIS_HASH, keyIdOf, manifestEntry, type Seal, SEAL_VERSION, SEAL_VERSION_ENTRY_AUTH, sealHash, signSeal } from './seal';

/** A row as the sealer reads it: its key and its leaf hash, computed by the server. */
interface LeafRow {
  id: string;
  tx: string | null;
  leaf: Buffer;
  horizon: string;
  /** With entry keys: the row's code and the digest the server computed of its fields. */
  code?: string | null;
  digest?: Buffer;
  /** The row's month (`YYYY-MM`, UTC). */
  month: string;
  /** With entry keys: ms since its `recorded_at` (the database's clock; negative when dated ahead of it). */
  age_ms?: number;
  /** Its actor columns, personal values and commitments (`PERSONAL_VALUES_SQL`), null for a row without commitments. */
  personal_values?: string | null;
  /** Set when the row is forged by its position, its month or its personal values alone (see {@link backdatedReason}, {@link retiredReason}, {@link personalReason}). */
  reason?: string;
}

/** A row sealing stopped before: its code names an entry key this process does not hold. */
export interface UnknownKeyRow {
  id: string;
  tx: string | null;
  keyId: string;
}

/** The last row of an empty first seal, which only records the entry-authentication boundary. */
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** Longest a statement of a sealing attempt may take or wait for a lock, unless the caller says (see {@link sealStatementMs}). */
const SEAL_TIMEOUT_MS = 30_000;

/**
 * The server-side bound of each statement of the module's sealer (`statement_timeout`,
 * `lock_timeout`): 15 × `writeTimeoutMs`, at least 5 s (30 s with the default 2000 ms).
 *
 * @example
 * sealStatementMs(2000); // 30000
 */
export function sealStatementMs(writeTimeoutMs: number): number {
  return Math.max(5000, 15 * writeTimeoutMs);
}

/**
 * What sealing uses of a connection: a TypeORM `QueryRunner` has it, and so has the sealer's
 * bounded `SealerSession`.
 */
export interface SealRunner {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
  startTransaction(): Promise<void>;
  commitTransaction(): Promise<void>;
  rollbackTransaction(): Promise<void>;
  readonly isTransactionActive: boolean;
}

/** Only one sealer at a time in a database: the others find the lock taken and try next time. */
export const SEALER_LOCK = 7_236_837_437_003_010n;

/** The seal table beside `audit_log` (`schema.audit_seal` when the log is schema-qualified). */
export function sealTableOf(logTablePath: string): string {
  const dot = logTablePath.lastIndexOf('.');
  return quoteTablePath(dot < 0 ? 'audit_seal' : `${logTablePath.slice(0, dot)}.audit_seal`);
}

/**
 * The trail's name in `audit.sealed` lines: the database and the audit table, so that the
 * verifier takes from a log group only the lines of the trail it checks.
 *
 * @example
 * trailName('audit', 'audit_log'); // 'audit/audit_log'
 */
export function trailName(database: string, logTablePath: string): string {
  return `${database}/${logTablePath}`;
}

/**
 * The columns of `audit_seal`, selected so that {@link toSeal} can read them (`seq` as text: order
 * by the table's column, `s.seq`). A `sealed_at` that is not a finite time (`infinity`, which only
 * a superuser's change can store) is selected as NULL: converted, it would fail the whole query.
 */
export const SEAL_COLUMNS_SQL =
  'seq::text, version, prev_hash, last_tx::text, last_id::text, horizon::text, row_count, root, manifest, ' +
  'CASE WHEN pg_catalog.isfinite(sealed_at) THEN (extract(epoch FROM sealed_at) * 1000)::bigint::text END AS sealed_at, ' +
  'hash, key_id, signature, entry_auth_from::text, ' +
  `${retentionMonthSql('retention_month')} AS retention_month, retention_rows::text, retention_covered, retention_erasures`;

/** {@link SEAL_COLUMNS_SQL} on a seal table whose migrations stop before the retention columns (no checkpoint there). */
const SEAL_COLUMNS_BEFORE_RETENTION_SQL = SEAL_COLUMNS_SQL.replace(
  /pg_catalog\.to_char\(retention_month.*$/,
  'NULL::text AS retention_month, NULL::text AS retention_rows, NULL::bytea AS retention_covered',
);

/**
 * The INSERT of a seal (not a checkpoint: its retention columns stay NULL) into `sealTable`.
 *
 * @example
 * const { sql, parameters } = sealInsert('"public"."audit_seal"', seal);
 * await client.query(sql, parameters);
 */
export function sealInsert(sealTable: string, seal: Seal): { sql: string; parameters: unknown[] } {
  return {
    sql: `INSERT INTO ${sealTable} (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::timestamptz, $11, $12, $13, $14)`,
    parameters: [
      seal.seq,
      seal.version,
      seal.prevHash,
      seal.lastTx,
      seal.lastId,
      seal.horizon,
      seal.rowCount,
      seal.root,
      seal.manifest,
      new Date(seal.sealedAt).toISOString(),
      seal.hash,
      seal.keyId,
      seal.signature,
      seal.entryAuthFrom ?? null,
    ],
  };
}

/** A row selected with {@link SEAL_COLUMNS_SQL} as a {@link Seal} (`sealedAt` NaN when the stored time is not finite). */
export function toSeal(row: Record<string, unknown>): Seal {
  return {
    seq: Number(row.seq),
    version: Number(row.version),
    prevHash: row.prev_hash as Buffer,
    lastTx: (row.last_tx as string | null) ?? null,
    lastId: row.last_id as string,
    horizon: row.horizon as string,
    rowCount: Number(row.row_count),
    root: row.root as Buffer,
    manifest: row.manifest as Buffer,
    sealedAt: row.sealed_at === null ? Number.NaN : Number(row.sealed_at),
    hash: row.hash as Buffer,
    keyId: (row.key_id as string | null) ?? null,
    signature: (row.signature as Buffer | null) ?? null,
    entryAuthFrom: (row.entry_auth_from as string | null) ?? null,
    retention:
      typeof row.retention_month === 'string'
        ? {
            month: row.retention_month,
            rows: Number(row.retention_rows),
            covered: (row.retention_covered as Buffer | null) ?? null,
            erasures: (row.retention_erasures as string | null | undefined) ?? null,
          }
        : null,
  };
}

/**
 * Seals, in one transaction on `runner`, the committed rows after the newest seal whose
 * transactions lie below the horizon (every transaction below it has ended, so no row can join
 * that range later), at most `maxRows`; rows that can never be sealed (see `row-validity.ts`)
 * are skipped. Returns the new seal, `null` when there was nothing to seal, or `'busy'` when
 * another sealer holds the lock. `guard`, given the newest seal, may throw to seal nothing.
 * Its statements resolve no name through `search_path`: a table named without its schema is
 * resolved first, as the module's inserts resolve it.
 *
 * @example
 * const seal = await sealOnce(queryRunner, 'audit_log', { maxRows: 20_000, signingKey: null });
 */
export async function sealOnce(
  runner: SealRunner,
  logTablePath: string,
  {
    maxRows,
    signingKey,
    guard,
    entryKeys = [],
    unknownKeyGrace,
    timeoutMs = SEAL_TIMEOUT_MS,
  }: {
    maxRows: number;
    signingKey: KeyObject | null;
    guard?: (newest: { seq: number; hash: Buffer } | null) => Promise<void>;
    entryKeys?: readonly ResolvedEntryKey[];
    /**
     * How long sealing waits before a row whose code names a key id this sealer does not hold
     * (`integrity.unknownKeyGraceMs`), and how long this sealer has waited already: once the
     * longer of that and the row's own age (since its `recorded_at`, which the database sets) reaches
     * `graceMs`, the row is forged. Without it, sealing waits for such a row as long as it takes.
     */
    unknownKeyGrace?: { graceMs: number; waitedMs: number };
    /** Each statement's `statement_timeout` and `lock_timeout` (default 30 s). */
    timeoutMs?: number;
  },
): Promise<(Seal & { forged: ForgedRow[]; unknownKey: UnknownKeyRow | null }) | { seal: null; unknownKey: UnknownKeyRow } | null | 'busy'> {
  if (!logTablePath.includes('.')) logTablePath = await resolveTable((sql, parameters) => runner.query(sql, parameters), logTablePath);
  const sealTable = sealTableOf(logTablePath);
  await runner.startTransaction();
  try {
    // A hung server or a lock held on the table fails the attempt (retried later), never stalls the sealer.
    await runner.query(`SET LOCAL statement_timeout = '${timeoutMs}ms'; SET LOCAL lock_timeout = '${timeoutMs}ms'; ${PIN_SEARCH_PATH_SQL}`);
    const [{ locked }] = (await runner.query(`SELECT pg_try_advisory_xact_lock(${SEALER_LOCK}) AS locked`)) as { locked: boolean }[];
    if (!locked) {
      await runner.rollbackTransaction();
      return 'busy';
    }
    const log = quoteTablePath(logTablePath);
    // A table whose migrations stop before the commitments column holds rows of version 1 only; one
    // before the retention columns, seals without them.
    const [{ committed, retained }] = (await runner.query(
      `SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = $1::pg_catalog.regclass AND attname = 'commitments' AND NOT attisdropped) AS committed,
              EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = $2::pg_catalog.regclass AND attname = 'retention_month' AND NOT attisdropped) AS retained`,
      [log, sealTable],
    )) as { committed: boolean; retained: boolean }[];
    const columns = retained ? SEAL_COLUMNS_SQL : SEAL_COLUMNS_BEFORE_RETENTION_SQL;
    const [newestRow] = (await runner.query(`SELECT ${columns} FROM ${sealTable} AS s ORDER BY s.seq DESC LIMIT 1`)) as Record<
      string,
      unknown
    >[];
    const newestSeal = newestRow ? toSeal(newestRow) : null;
    // The app's role can append to audit_seal too: a seal the sealer cannot authenticate is never built upon.
    if (newestSeal) await checkNewestSeal((sql, parameters) => runner.query(sql, parameters), sealTable, newestSeal, signingKey);
    const newest = newestSeal
      ? {
          seq: String(newestSeal.seq),
          hash: newestSeal.hash,
          last_tx: newestSeal.lastTx,
          last_id: newestSeal.lastId,
          horizon: newestSeal.horizon,
          entry_auth_from: newestSeal.entryAuthFrom ?? null,
        }
      : undefined;
    await guard?.(newest ? { seq: Number(newest.seq), hash: newest.hash } : null);
    const keyed = entryKeys.length > 0;
    if (!keyed && newest?.entry_auth_from) throw entryKeysMissingError(newest.entry_auth_from);
    // The first seal made with entry keys records the boundary: rows written from here on must carry a code.
    const entryAuthFrom = !keyed
      ? null
      : (newest?.entry_auth_from ??
        ((await runner.query(`SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text AS b`)) as { b: string }[])[0].b);
    const after: RowKey | null = newest ? { tx: newest.last_tx, id: newest.last_id } : null;
    const leafFields = committed ? LEAF_FIELDS : LEAF_FIELDS_BEFORE_COMMITMENTS;
    // The seal's rows are picked by their keys alone, then read by id and hashed: a backlog is
    // never sorted as whole rows, and only the rows sealed are hashed. The key (id, occurred_at)
    // lets a forger repeat a sealed row's id with another occurred_at: only the rows picked (same tx) are read.
    const select = (where: string, order: string, parameters: string[], limit: number) =>
      runner.query(
        `WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon),
         picked AS MATERIALIZED (SELECT l.id, l.tx FROM ${log} AS l, h WHERE ${where} AND ${SEALABLE_ROW_SQL} ORDER BY ${order} LIMIT ${limit})
         SELECT id::text AS id, tx::text AS tx, ${LEAF_SQL} AS leaf, h.horizon::text AS horizon,
           pg_catalog.to_char(l.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month${keyed ? SEAL_ENTRY_COLUMNS : ''}
           ${committed ? `, ${PERSONAL_VALUES_SQL} AS personal_values` : ''}${keyed ? `, ${AGE_MS_SQL} AS age_ms` : ''}
         FROM ${log} AS l, h, ${leafFields} WHERE l.id = ANY(ARRAY(SELECT id FROM picked))
           AND EXISTS (SELECT FROM picked AS p WHERE p.id = l.id AND p.tx IS NOT DISTINCT FROM l.tx) ORDER BY l.tx NULLS FIRST, l.id`,
        parameters,
      ) as Promise<LeafRow[]>;
    // Rows from before the migration (no tx) come first, in id order along the primary key; the
    // same seal goes on with the rows that have one, so that its horizon vouches for both.
    let rows: LeafRow[] = [];
    if (!after || after.tx === null)
      rows = await select(`tx IS NULL${after ? ' AND id > $1::uuid' : ''}`, 'l.id', after ? [after.id] : [], maxRows);
    if (rows.length < maxRows) {
      const { where, parameters } = keyRange(after, null);
      // Ordered by the columns (l.tx), not the selected texts of the same names.
      rows = rows.concat(await select(`${where} AND tx < h.horizon`, 'l.tx, l.id', parameters, maxRows - rows.length));
    }
    // Months retention removed: a row dated in one came back after its month went (a copy: the original was sealed and retired).
    const retired: ReadonlySet<string> =
      rows.length > 0 && retained
        ? new Set(
            (
              (await runner.query(
                `SELECT ${retentionMonthSql('s.retention_month')} AS month FROM ${sealTable} AS s WHERE s.retention_month IS NOT NULL`,
              )) as { month: string }[]
            ).map((r) => r.month),
          )
        : new Set();
    for (const row of rows) {
      row.reason =
        backdatedReason(row, newest) ??
        retiredReason(row, retired) ??
        personalReason(row) ??
        (keyed && waitedEnough(row, unknownKeyGrace) ? forsakenKeyReason(unknownKeyOf(row.code, entryKeys)) : undefined);
    }
    // A row signed with a key this process lacks is not judged: the seal ends before it, for a sealer that holds the key.
    const stop = keyed ? rows.findIndex((row) => row.reason === undefined && unknownKeyOf(row.code, entryKeys) !== null) : -1;
    const unknownKey =
      stop < 0 ? null : { id: rows[stop].id, tx: rows[stop].tx, keyId: unknownKeyOf(rows[stop].code, entryKeys) as string };
    const cut = stop < 0 ? rows.length : stop;
    const picked = rows.slice(0, cut);
    // Nothing to seal, unless the boundary is still to be recorded: then an empty seal records it.
    if (picked.length === 0 && (!keyed || newest?.entry_auth_from)) {
      await runner.rollbackTransaction();
      return unknownKey ? { seal: null, unknownKey } : null;
    }
    const { sealed, forged } = keyed
      ? judgeSealRows(picked, BigInt(entryAuthFrom as string), entryKeys)
      : {
          sealed: picked.filter((row) => row.reason === undefined),
          forged: picked.filter((row): row is LeafRow & { reason: string } => row.reason !== undefined),
        };
    const leaves: Buffer[] = [];
    const manifest: Buffer[] = [];
    for (const row of sealed) {
      leaves.push(row.leaf);
      manifest.push(manifestEntry(row.id, row.leaf));
    }
    // The seal's range ends at the last row picked, forged or not, so a forged row is in a sealed range and never picked again.
    // An empty seal (the boundary) vouches that nothing below the current horizon is left to seal.
    const last = picked.at(-1) ?? {
      tx: newest ? newest.last_tx : null,
      id: newest ? newest.last_id : NIL_UUID,
      horizon: entryAuthFrom as string,
    };
    const unsigned = {
      seq: newest ? Number(newest.seq) + 1 : 1,
      version: keyed ? SEAL_VERSION_ENTRY_AUTH : SEAL_VERSION,
      prevHash: newest ? newest.hash : GENESIS_HASH,
      lastTx: last.tx,
      lastId: last.id,
      // A seal cut at maxRows vouches only for the rows up to its last one; one ended before a row, for those below that row.
      horizon: unknownKey ? (unknownKey.tx ?? '0') : rows.length < maxRows ? last.horizon : (last.tx ?? '0'),
      rowCount: sealed.length,
      root: merkleRoot(leaves),
      manifest: Buffer.concat(manifest),
      sealedAt: Date.now(),
      entryAuthFrom,
    };
    const hash = sealHash(unsigned);
    const seal: Seal = {
      ...unsigned,
      hash,
      keyId: signingKey ? keyIdOf(signingKey) : null,
      signature: signingKey ? signSeal(hash, signingKey) : null,
    };
    const insert = sealInsert(sealTable, seal);
    await runner.query(insert.sql, insert.parameters);
    const forgedRows = forged.length > 0 ? await describeForged(runner, log, forged) : [];
    await runner.commitTransaction();
    return { ...seal, forged: forgedRows, unknownKey };
  } catch (error) {
    if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    throw error;
  }
}

/**
 * Why a row picked after the newest seal is forged by its position, as `audit-verify` judges the
 * rows after the newest seal: a `tx` below that seal's horizon (every such transaction had ended
 * and its rows were sealed), or no `tx` once a seal vouches for the rows without one. Undefined
 * for a row that may be sealed.
 */
function backdatedReason(row: LeafRow, newest: { last_tx: string | null; horizon: string } | undefined): string | undefined {
  if (!newest) return undefined;
  const horizon = BigInt(newest.horizon);
  const backdated = row.tx === null ? newest.last_tx !== null || horizon > 0n : BigInt(row.tx) < horizon;
  return backdated
    ? `it lies after the newest seal but older than its horizon (transaction ${newest.horizon}): given an old transaction id`
    : undefined;
}

/**
 * Why a row is forged by its month: retention removed that month, every row of it sealed and
 * counted in its checkpoint, so a row dated in it now is a copy of a retired row (or made up).
 * `audit-verify` then names it as a row in a sealed range but in no seal.
 */
function retiredReason(row: LeafRow, retired: ReadonlySet<string>): string | undefined {
  if (retired.has(row.month)) return `it is dated in ${row.month}, a month retention removed: a retired row written back`;
  // The legacy partition's checkpoint (`legacy..YYYY-MM`): every month up to that one went.
  const legacy = [...retired].find((month) => month.startsWith(LEGACY_MARK_PREFIX) && row.month <= month.slice(LEGACY_MARK_PREFIX.length));
  return legacy
    ? `it is dated in ${row.month}, inside the legacy partition retention removed (${legacy}): a retired row written back`
    : undefined;
}

/** A row's age in ms by the database's clock, from the `recorded_at` it set at the insert. */
const AGE_MS_SQL = `(pg_catalog.date_part('epoch', pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) l.recorded_at) OPERATOR(pg_catalog.*) 1000)::pg_catalog.float8`;

/**
 * Whether sealing has waited the grace before `row`: by the sealer's own wait, or by the row's
 * age. A row dated more than a minute ahead of the database's clock had its `recorded_at` set by
 * hand (the database sets it at the insert), to stretch the wait: no wait is owed to it.
 */
function waitedEnough(row: LeafRow, grace: { graceMs: number; waitedMs: number } | undefined): boolean {
  if (grace === undefined) return false;
  const age = row.age_ms ?? 0;
  return age < -CLOCK_STEP_MS || Math.max(grace.waitedMs, age) >= grace.graceMs;
}

/** How far the database's clock may step back (NTP) before a row's `recorded_at` reads as set by hand. */
const CLOCK_STEP_MS = 60_000;

/**
 * Why a row is forged by the key its code names, once sealing has waited `integrity.unknownKeyGraceMs`
 * for a sealer that holds it: a key id this sealer does not hold (a made-up id, or a key never
 * given to the sealers).
 */
function forsakenKeyReason(keyId: string | null): string | undefined {
  return keyId === null
    ? undefined
    : `its entry code names key "${keyId}", which the sealer does not hold; sealing waited integrity.unknownKeyGraceMs for one that does`;
}

/**
 * Why a row is forged by its personal values: its seal and entry code cover their commitments,
 * not the values, so a value that no longer matches its commitment (an actor rewritten before the
 * seal, a path planted in `personal`) was changed outside the module. Erased rows pass.
 */
function personalReason(row: LeafRow): string | undefined {
  const problem = personalProblem(row.personal_values);
  return problem === null ? undefined : `its personal values are not as the module wrote them: ${problem}`;
}

/**
 * The newest seal in the database, or null. Run it with `search_path` pinned, with the table named with its schema.
 *
 * @example
 * const newest = await newestSeal(queryRunner, 'audit_log');
 */
export async function newestSeal(runner: SealRunner, logTablePath: string): Promise<Seal | null> {
  const [row] = (await runner.query(
    `SELECT ${SEAL_COLUMNS_SQL} FROM ${sealTableOf(logTablePath)} AS s ORDER BY s.seq DESC LIMIT 1`,
  )) as Record<string, unknown>[];
  return row ? toSeal(row) : null;
}

/** The forged rows as `audit.forged` names them: id, transaction, why, and what the row claims. */
async function describeForged(runner: SealRunner, log: string, forged: (LeafRow & { reason?: string })[]): Promise<ForgedRow[]> {
  const claims = (await runner.query(
    `SELECT id::text AS id, occurred_at::text AS occurred_at, action, entity_type, entity_id, user_id FROM ${log} WHERE id = ANY($1::uuid[])`,
    [forged.map((row) => row.id)],
  )) as { id: string; occurred_at: string; action: string; entity_type: string | null; entity_id: string | null; user_id: string | null }[];
  const byId = new Map(claims.map((c) => [c.id, c]));
  return forged.map((row) => {
    const claim = byId.get(row.id);
    return {
      id: row.id,
      tx: row.tx,
      reason: row.reason ?? 'not authentic',
      occurredAt: claim?.occurred_at ?? null,
      action: claim?.action ?? null,
      entityType: claim?.entity_type ?? null,
      entityId: claim?.entity_id ?? null,
      userId: claim?.user_id ?? null,
    };
  });
}
