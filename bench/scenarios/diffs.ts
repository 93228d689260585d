import { type AuditEntry, type EntityChange } from '../../src/audit';
import { markEntityChanges } from '../../src/audit/diffs/entry-diffs';
import { auditEntries } from '../support/entries';
import { median } from '../support/load';
import { autovacuumOff, countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { percentile } from '../support/read-timing';
import { type Figure } from '../support/report';
import {
  perEntry,
  type ServerCounters,
  serverCounters,
  sessionsEnded,
  sessionsOf,
  type WalKind,
  walKinds,
  walPosition,
} from '../support/server-counters';
import { moduleLog } from './throughput';

/**
 * The rows of a run: `none`, the bench's entries (a request body, no `changes.entities`); `own`,
 * with the NDA's own insert in `changes.entities`, as the example app's `POST /ndas` writes it (the
 * row's other entities: none); `contacts`, with the NDA's insert and three contacts created in the
 * same transaction (three other entities a row).
 */
export type DiffsKind = 'none' | 'own' | 'contacts';

/**
 * The trail's index of other entities in a run: `index`, as `AuditOtherEntityRefs1767200000000`
 * makes it (their type and id, `fastupdate = off`); `dropped`, without it; `pending`, the same
 * index with a pending list (`fastupdate = on`, PostgreSQL's default for GIN); `whole`, instead of
 * it, the index `AuditOtherEntitiesIndex1767000000000` made (the other entities whole, their
 * `fields` too: the trail before `AuditOtherEntityRefs1767200000000`); `neither`, without it and
 * without `audit_log_entities_idx` (erasure's GIN index of all of `changes.entities`), for scale.
 */
export type IndexVariant = 'index' | 'dropped' | 'pending' | 'whole' | 'neither';

/** Entries per run, warm-up entries before each, rounds; `rows` (0: none) a filled point of `contacts` rows. */
export interface DiffsSizes {
  entries: number;
  warmup: number;
  rounds: number;
  /** Rows of `contacts` put in the partition `log()` writes to before the filled point's rounds (0: no filled point). */
  rows?: number;
}

const INDEX = 'audit_log_other_entity_refs_idx';
const WHOLE_INDEX = 'audit_log_other_entities_idx';
const ENTITIES_INDEX = 'audit_log_entities_idx';
/** The module's `writeTimeoutMs` in the runs: long enough that no batch fails over; batches past the default are counted. */
const WRITE_TIMEOUT_MS = 60_000;
/** The module's default `writeTimeoutMs`: a batch slower than this fails the module over at the defaults. */
const DEFAULT_WRITE_TIMEOUT_MS = 2000;
const ROLES = ['legal', 'sales', 'procurement'] as const;
const AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** The id of entry `i`'s contact `k`: UUID-shaped, unique across the bench's entries. */
const contactId = (i: number, k: number) => `0193a1c3-${k}${String(i).padStart(3, '0').slice(-3)}-7000-8000-${String(i).padStart(12, '0')}`;

/**
 * `count` entries of `kind` ({@link DiffsKind}) from the bench's entry `from` on: the bench's
 * entries, with `changes.entities` marked as the module marks the changes it captured, so that
 * `log()` takes them as it takes a request's diffs. Every entry's entities and values are its own.
 *
 * @example
 * const entries = diffEntries('contacts', 32_000);
 */
export function diffEntries(kind: DiffsKind, count: number, from = 0): AuditEntry[] {
  return auditEntries(from + count)
    .slice(from)
    .map((entry, at) => {
      const i = from + at;
      if (kind === 'none') return entry;
      const { body } = entry.changes as { body: { title: string; counterparty: string } };
      const id = String(entry.entityId);
      const nda: EntityChange = {
        type: 'NDA',
        id,
        op: 'insert',
        fields: { id: [null, id], title: [null, body.title], counterparty: [null, body.counterparty] },
      };
      const contacts: EntityChange[] =
        kind === 'contacts'
          ? ROLES.map((role, k): EntityChange => ({
              type: 'Contact',
              id: contactId(i, k),
              op: 'insert',
              fields: {
                id: [null, contactId(i, k)],
                nda: [null, id],
                name: [null, `${role} contact ${i}`],
                email: [null, `${role}-${i}@counterparty-${i % 97}.example.com`],
                role: [null, role],
              },
            }))
          : [];
      const { entities } = markEntityChanges({ entities: [nda, ...contacts] });
      return { ...entry, changes: { body, entities } };
    });
}

/** Gives database `database`'s trail the index of `variant` ({@link IndexVariant}); its tables are empty or freshly filled. */
async function prepare(pg: TestPostgres, database: string, variant: IndexVariant): Promise<void> {
  if (variant === 'dropped' || variant === 'whole' || variant === 'neither') await pg.query(`DROP INDEX ${INDEX}`, [], database);
  if (variant === 'neither') await pg.query(`DROP INDEX ${ENTITIES_INDEX}`, [], database);
  if (variant === 'pending') {
    // A partitioned index takes no storage parameters: each partition's index gets its pending list.
    await pg.query(
      `DO $$ DECLARE i regclass; BEGIN
         FOR i IN SELECT relid FROM pg_partition_tree('${INDEX}') WHERE isleaf LOOP
           EXECUTE format('ALTER INDEX %s SET (fastupdate = on)', i);
         END LOOP; END $$`,
      [],
      database,
    );
  }
  if (variant === 'whole') {
    // The function and index the trail had before AuditOtherEntityRefs1767200000000 (AuditOtherEntitiesQualified1767100000000's body).
    await pg.query(
      `CREATE FUNCTION audit_log_other_entities(entities jsonb, own_type text, own_id text)
       RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE
       AS $fn$
         SELECT CASE WHEN pg_catalog.jsonb_typeof(entities) OPERATOR(pg_catalog.=) 'array' THEN (
           SELECT COALESCE(pg_catalog.jsonb_agg(e), '[]'::pg_catalog.jsonb)
           FROM pg_catalog.jsonb_array_elements(entities) AS e
           WHERE NOT (COALESCE((e OPERATOR(pg_catalog.->>) 'type') OPERATOR(pg_catalog.=) own_type, (e OPERATOR(pg_catalog.->>) 'type') IS NULL AND own_type IS NULL)
             AND COALESCE((e OPERATOR(pg_catalog.->>) 'id') OPERATOR(pg_catalog.=) own_id, (e OPERATOR(pg_catalog.->>) 'id') IS NULL AND own_id IS NULL))
         ) ELSE entities END
       $fn$`,
      [],
      database,
    );
    await pg.query(
      `CREATE INDEX ${WHOLE_INDEX} ON audit_log USING gin (audit_log_other_entities(changes -> 'entities', entity_type, entity_id) jsonb_path_ops)
       WITH (fastupdate = off) WHERE changes ? 'entities'`,
      [],
      database,
    );
  }
}

/** Bytes of each of the trail's GIN indexes in `database` (summed over the partitions), those that exist. */
async function ginBytes(pg: TestPostgres, database: string): Promise<Record<string, number>> {
  const rows = await pg.query<{ name: string; bytes: number }>(
    `SELECT n AS name, (SELECT coalesce(sum(pg_relation_size(relid)), 0) FROM pg_partition_tree(to_regclass(n)) WHERE isleaf)::float8 AS bytes
     FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NOT NULL`,
    [[ENTITIES_INDEX, INDEX, WHOLE_INDEX]],
    database,
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.bytes]));
}

/** Pages and entries in the pending lists of the index of other entities (`pgstatginindex`, summed over the partitions). */
async function pendingList(pg: TestPostgres, database: string): Promise<{ pages: number; tuples: number }> {
  await pg.query('CREATE EXTENSION IF NOT EXISTS pgstattuple', [], database);
  const [row] = await pg.query<{ pages: number; tuples: number }>(
    `SELECT coalesce(sum(s.pending_pages), 0)::float8 AS pages, coalesce(sum(s.pending_tuples), 0)::float8 AS tuples
     FROM pg_partition_tree('${INDEX}') t, LATERAL pgstatginindex(t.relid) s WHERE t.isleaf`,
    [],
    database,
  );
  return row;
}

/**
 * Throws unless the rows naming contact `id` among their other entities are the same, `expected`
 * of them, through the migration's function of type and id as through the `whole` variant's (`@>` as a history page asks).
 */
async function sameRows(pg: TestPostgres, database: string, id: string, expected: number): Promise<void> {
  const ref = JSON.stringify([{ type: 'Contact', id }]);
  const [row] = await pg.query<{ keys: string[]; others: string[] }>(
    `SELECT array(SELECT request_id FROM audit_log WHERE changes ? 'entities'
                   AND audit_log_other_entity_refs(changes -> 'entities', entity_type, entity_id) @> $1::jsonb ORDER BY 1) AS keys,
            array(SELECT request_id FROM audit_log WHERE changes ? 'entities'
                   AND audit_log_other_entities(changes -> 'entities', entity_type, entity_id) @> $1::jsonb ORDER BY 1) AS others`,
    [ref],
    database,
  );
  if (row.keys.length !== expected || row.keys.join() !== row.others.join()) {
    throw new Error(
      `${database}: contact ${id} on rows ${row.keys.join()} by type and id, on ${row.others.join()} by the other entities whole`,
    );
  }
}

/** Throws unless a filled row's entities have the types and fields of a logged row's (the fill stands for `log()`'s rows). */
async function sameShape(pg: TestPostgres, database: string): Promise<void> {
  const shape = (prefix: string) =>
    `(SELECT string_agg(e ->> 'type' || ':' || (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(e -> 'fields') AS k), ' ' ORDER BY n)
      FROM jsonb_array_elements((SELECT changes -> 'entities' FROM audit_log WHERE request_id LIKE '${prefix}%' LIMIT 1)) WITH ORDINALITY AS x(e, n))`;
  const [row] = await pg.query<{ filled: string; logged: string }>(
    `SELECT ${shape('fill-')} AS filled, ${shape('req-')} AS logged`,
    [],
    database,
  );
  if (!row.filled || row.filled !== row.logged) throw new Error(`${database}: filled rows' entities ${row.filled}, logged ${row.logged}`);
}

/** The indexes of a filled point's trails, one trail each. */
const FILLED: readonly IndexVariant[] = ['index', 'dropped', 'whole'];

/** One measured run. */
interface DiffsRun {
  point: 'empty' | 'filled';
  kind: DiffsKind;
  variant: IndexVariant;
  round: number;
  perSec: number;
  /** The writer's batches of the measured part, each from its `insert` call to its commit (ms). */
  batchMs: { count: number; p50: number; p99: number; max: number; overDefaultTimeout: number; each: number[] };
  perEntry: ServerCounters;
  walKinds: WalKind[] | undefined;
  ginBytesPerRow: Record<string, number>;
  pending?: { pages: number; tuples: number };
}

/** A run's line: rate, batches, WAL and buffers per entry, the GIN indexes' hits and size per row. */
function describe(run: DiffsRun): string {
  const c = run.perEntry;
  const hits = c.table.hit + Object.values(c.indexes).reduce((sum, i) => sum + i.hit, 0);
  const gins = Object.entries(c.indexes)
    .filter(([name]) => [ENTITIES_INDEX, INDEX, WHOLE_INDEX].includes(name))
    .map(
      ([name, i]) => `${name.replace(/^audit_log_/, '')} ${i.hit.toFixed(1)} hit (${(run.ginBytesPerRow[name] ?? 0).toFixed(0)} B a row)`,
    );
  const b = run.batchMs;
  return (
    `${run.point} ${run.kind.padEnd(8)} ${run.variant.padEnd(7)} ${run.perSec.toFixed(0).padStart(6)} entries/s; ` +
    `${b.count} batches p50 ${b.p50.toFixed(1)} p99 ${b.p99.toFixed(1)} max ${b.max.toFixed(1)} ms (${b.overDefaultTimeout} over ${DEFAULT_WRITE_TIMEOUT_MS}); ` +
    `per entry WAL ${c.wal.bytes.toFixed(0)} B in ${c.wal.records.toFixed(1)} records, ${c.wal.fpi.toFixed(3)} full-page images; ` +
    `buffers ${hits.toFixed(1)} hit, ${(c.table.read + Object.values(c.indexes).reduce((sum, i) => sum + i.read, 0)).toFixed(2)} read; ` +
    `written out by the sessions ${c.io.writes.toFixed(3)}; ${gins.join(', ') || 'no GIN index'}` +
    (run.pending ? `; pending list at the end ${run.pending.pages} pages, ${run.pending.tuples} entries` : '')
  );
}

/**
 * A filled point's rows `$1`..`$2 - 1` of `contacts` (as {@link diffEntries} makes them, with ids
 * and names of their own: none is a logged entry's), dated one every half second up to `$3`, `$5`
 * rows in all, user agent `$4`.
 */
const FILL = `
  INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, request_id, changes, metadata, recorded_at)
  SELECT uuidv7(t.at - now()), t.at, 'nda_created', 'NDA', n.id, 'user-' || g % 500, 'success', format('10.1.%s.%s', (g >> 8) & 255, g & 255), $4,
    'fill-' || g,
    jsonb_build_object(
      'body', jsonb_build_object('title', n.title, 'counterparty', n.counterparty, 'jurisdiction', 'DE',
        'term', jsonb_build_object('months', 24, 'autoRenew', g % 2 = 0),
        'contacts', jsonb_build_array(format('legal-%s@example.com', g % 13), format('sales-%s@example.com', g % 7)),
        'notes', 'Covers technical drawings, pricing and roadmap shared during the evaluation phase.'),
      'entities', jsonb_build_array(jsonb_build_object('type', 'NDA', 'id', n.id, 'op', 'insert', 'fields', jsonb_build_object(
          'id', jsonb_build_array(NULL, n.id), 'title', jsonb_build_array(NULL, n.title), 'counterparty', jsonb_build_array(NULL, n.counterparty))))
        || (SELECT jsonb_agg(jsonb_build_object('type', 'Contact', 'id', c.id, 'op', 'insert', 'fields', jsonb_build_object(
              'id', jsonb_build_array(NULL, c.id), 'nda', jsonb_build_array(NULL, n.id), 'name', jsonb_build_array(NULL, format('%s contact %s', c.role, n.m)),
              'email', jsonb_build_array(NULL, format('%s-%s@counterparty-%s.example.com', c.role, n.m, g % 97)), 'role', jsonb_build_array(NULL, c.role))) ORDER BY c.k)
            FROM (SELECT r.role, r.k, format('f193a1c3-%s%s-7000-8000-%s', r.k, lpad(right(g::text, 3), 3, '0'), lpad(g::text, 12, '0')) AS id
                  FROM unnest(ARRAY['legal', 'sales', 'procurement']) WITH ORDINALITY AS r(role, k)) AS c)),
    '{"method": "POST", "route": "/ndas", "params": {}, "statusCode": 201, "durationMs": 3.2}'::jsonb, t.at
  FROM generate_series($1::bigint, $2::bigint - 1) AS g,
    LATERAL (SELECT format('f193a1c2-%s-7000-8000-%s', lpad(right(g::text, 4), 4, '0'), lpad(g::text, 12, '0')) AS id, g + 100000000 AS m,
      format('Mutual NDA for project %s (supplier onboarding)', g + 100000000) AS title, format('Counterparty Holdings %s GmbH', g % 97) AS counterparty) AS n,
    LATERAL (SELECT $3::timestamptz - ($5::bigint - g) * interval '0.5 seconds' AS at) AS t`;

/** Fills `database`'s trail with `rows` rows of {@link FILL}, two sessions at a time, then analyzes and checkpoints (autovacuum off). */
async function fill(pg: TestPostgres, database: string, rows: number): Promise<void> {
  await autovacuumOff(pg, database);
  const anchor = new Date(Date.now() - 60_000).toISOString();
  const started = performance.now();
  for (let done = 0; done < rows;) {
    const n = Math.min(200_000, rows - done);
    const half = Math.ceil(n / 2);
    await Promise.all([
      pg.query(FILL, [done, done + half, anchor, AGENT, rows], database),
      pg.query(FILL, [done + half, done + n, anchor, AGENT, rows], database),
    ]);
    done += n;
  }
  await pg.query('ANALYZE audit_log', [], database);
  console.log(`  ${database}: filled ${rows} rows in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

/**
 * Scenario: what the history page's index (`audit_log_other_entity_refs_idx`, a GIN index of
 * the type and id of each row's other entities) costs `log()`. Rounds of `log()` (as in `throughput`: 1000 callers, after a
 * warm-up) into fresh trails (every audit migration) with the index and with it dropped, for rows
 * without diffs, with the NDA's own change, and with the NDA's and three contacts' (see
 * {@link DiffsKind}); for the last also with the index's pending list on, with the index of the
 * other entities whole that the trail had before, and with neither GIN index ({@link IndexVariant}). The runs of a round go one after the
 * other, in the reverse order every other round; each ratio is the median of the per-round ratios
 * against `dropped`. The module runs with `writeTimeoutMs` 60 s, so that every batch is timed to
 * its commit; the batches slower than the default (2000 ms, past which the module would fail over)
 * are counted. Each run prints PostgreSQL's counters per entry (as the `scale` scenario), its
 * batches' p50, p99 and longest (the writer's `insert` call to its commit), and each GIN index's
 * size per row; all are kept in `details.diffs.runs`. With `rows`, three trails (the index, none,
 * and the index of the other entities whole) are first filled with that many `contacts` rows, checkpointed, and measured the same way
 * for `contacts` entries.
 *
 * @example
 * const figures = await diffs(pg, { entries: 30_000, warmup: 2000, rounds: 5 }, details);
 */
export async function diffs(pg: TestPostgres, sizes: DiffsSizes, details: Record<string, unknown>): Promise<Figure[]> {
  const entries = Object.fromEntries(
    (['none', 'own', 'contacts'] as const).map((kind) => {
      const all = diffEntries(kind, sizes.warmup + sizes.entries);
      return [kind, { warm: all.slice(0, sizes.warmup), measured: all.slice(sizes.warmup) }];
    }),
  ) as Record<DiffsKind, { warm: AuditEntry[]; measured: AuditEntry[] }>;
  await pg.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  let made = 0;
  const runs: DiffsRun[] = [];
  const measure = async (
    point: DiffsRun['point'],
    kind: DiffsKind,
    variant: IndexVariant,
    round: number,
    database: string,
    { warm, measured } = entries[kind],
  ): Promise<DiffsRun> => {
    const before = await countRows(pg, database);
    const start = await serverCounters(pg, database);
    let from = '';
    let to = '';
    let pids: number[] = [];
    const result = await moduleLog(
      pg.url(database),
      warm,
      measured,
      // Every batch timed to its commit: at the default (2000 ms) a batch slower than that fails the module over.
      { writeTimeoutMs: WRITE_TIMEOUT_MS },
      {
        before: async () => void (from = await walPosition(pg)),
        after: async () => {
          to = await walPosition(pg);
          pids = await sessionsOf(pg, database);
        },
      },
    );
    const kinds = await walKinds(pg, from, to, sizes.entries);
    await sessionsEnded(pids);
    const end = await serverCounters(pg, database);
    const counted = await countRows(pg, database);
    if (counted !== before + sizes.warmup + sizes.entries) {
      throw new Error(`${database}: ${counted} rows in audit_log, expected ${before + sizes.warmup + sizes.entries}`);
    }
    if (variant === 'whole') await sameRows(pg, database, contactId(sizes.warmup + 7, 1), 1);
    if (point === 'filled' && round === 0) await sameShape(pg, database);
    const bytes = await ginBytes(pg, database);
    const run: DiffsRun = {
      point,
      kind,
      variant,
      round,
      perSec: (sizes.entries / result.ms) * 1000,
      batchMs: {
        count: result.batchMs.length,
        p50: percentile(result.batchMs, 50),
        p99: percentile(result.batchMs, 99),
        max: Math.max(...result.batchMs),
        overDefaultTimeout: result.batchMs.filter((ms) => ms > DEFAULT_WRITE_TIMEOUT_MS).length,
        each: result.batchMs.map((ms) => Math.round(ms * 10) / 10),
      },
      perEntry: perEntry(start, end, sizes.warmup + sizes.entries),
      walKinds: kinds,
      ginBytesPerRow: Object.fromEntries(Object.entries(bytes).map(([name, b]) => [name, b / counted])),
      pending: variant === 'pending' || variant === 'index' ? await pendingList(pg, database) : undefined,
    };
    runs.push(run);
    console.log(`    ${describe(run)}`);
    return run;
  };
  const pairs: [DiffsKind, IndexVariant][] = [
    ['none', 'index'],
    ['none', 'dropped'],
    ['own', 'index'],
    ['own', 'dropped'],
    ['contacts', 'index'],
    ['contacts', 'dropped'],
    ['contacts', 'pending'],
    ['contacts', 'whole'],
    ['contacts', 'neither'],
  ];
  for (let round = 0; round < sizes.rounds; round++) {
    console.log(`  round ${round + 1}, fresh trails`);
    for (const [kind, variant] of round % 2 ? [...pairs].reverse() : pairs) {
      const database = `diffs_${kind}_${variant}_${made++}`;
      await freshAuditDatabase(pg, database);
      await prepare(pg, database, variant);
      await measure('empty', kind, variant, round, database);
      await pg.query(`DROP DATABASE ${database} WITH (FORCE)`);
    }
  }
  const filled = sizes.rows ?? 0;
  const fills: Record<string, { rows: number; ginBytes: Record<string, number> }> = {};
  if (filled > 0) {
    for (const variant of FILLED) {
      const database = `diffs_filled_${variant}`;
      await freshAuditDatabase(pg, database);
      await prepare(pg, database, variant);
      await fill(pg, database, filled);
      fills[variant] = { rows: filled, ginBytes: await ginBytes(pg, database) };
    }
    await pg.query('CHECKPOINT');
    for (let round = 0; round < sizes.rounds; round++) {
      console.log(`  round ${round + 1}, trails of ${filled} rows and more`);
      // Each round's entries are new ones (new entities, new values), as a month's next requests are.
      const n = sizes.warmup + sizes.entries;
      const all = diffEntries('contacts', n, round * n);
      const own = { warm: all.slice(0, sizes.warmup), measured: all.slice(sizes.warmup) };
      for (const variant of round % 2 ? [...FILLED].reverse() : FILLED) {
        await measure('filled', 'contacts', variant, round, `diffs_filled_${variant}`, own);
      }
    }
  }
  details.diffs = { ...sizes, fills, runs };
  const of = (point: DiffsRun['point'], kind: DiffsKind, variant: IndexVariant) =>
    runs.filter((r) => r.point === point && r.kind === kind && r.variant === variant);
  const ratios = (point: DiffsRun['point'], kind: DiffsKind, variant: IndexVariant) => {
    const base = of(point, kind, 'dropped');
    return of(point, kind, variant).map((r) => r.perSec / (base.find((b) => b.round === r.round) as DiffsRun).perSec);
  };
  const ratioFigure = (key: string, point: DiffsRun['point'], kind: DiffsKind, variant: IndexVariant, what: string): Figure => {
    const values = ratios(point, kind, variant);
    const wal = (v: IndexVariant) => median(of(point, kind, v).map((r) => r.perEntry.wal.bytes)).toFixed(0);
    return {
      key,
      value: median(values),
      unit: '×',
      note: `${what}: median of ${values.map((v) => v.toFixed(2)).join(', ')}; ${median(of(point, kind, variant).map((r) => r.perSec)).toFixed(0)} against ${median(of(point, kind, 'dropped').map((r) => r.perSec)).toFixed(0)} entries/s; WAL ${wal(variant)} against ${wal('dropped')} B an entry`,
    };
  };
  const p99 = (point: DiffsRun['point'], variant: IndexVariant, key: string): Figure => {
    const at = of(point, 'contacts', variant);
    const all = at.flatMap((r) => r.batchMs.each);
    return {
      key,
      value: percentile(all, 99),
      unit: 'ms',
      note: `p99 of the ${all.length} batches of the rounds (p50 ${percentile(all, 50).toFixed(1)} ms, longest ${Math.max(...all).toFixed(0)} ms, ${all.filter((ms) => ms > DEFAULT_WRITE_TIMEOUT_MS).length} over the default writeTimeoutMs); per round ${at.map((r) => r.batchMs.p99.toFixed(1)).join(', ')}`,
    };
  };
  const figures: Figure[] = [
    ratioFigure('diffs.ratioNone', 'empty', 'none', 'index', 'rows without changes.entities, with the index against without'),
    ratioFigure('diffs.ratioOwn', 'empty', 'own', 'index', "rows with the NDA's own change, with the index against without"),
    ratioFigure('diffs.ratioContacts', 'empty', 'contacts', 'index', 'rows with an NDA and three contacts, with the index against without'),
    ratioFigure('diffs.ratioContactsPending', 'empty', 'contacts', 'pending', 'the same, the index with a pending list (fastupdate on)'),
    ratioFigure(
      'diffs.ratioContactsWhole',
      'empty',
      'contacts',
      'whole',
      'the same, the index of the other entities whole (before AuditOtherEntityRefs)',
    ),
    ratioFigure('diffs.ratioContactsNeither', 'empty', 'contacts', 'neither', 'the same, audit_log_entities_idx dropped too'),
    p99('empty', 'index', 'diffs.batchP99MsIndex'),
    p99('empty', 'dropped', 'diffs.batchP99MsDropped'),
    p99('empty', 'pending', 'diffs.batchP99MsPending'),
  ];
  if (filled > 0) {
    figures.push(
      ratioFigure('diffs.ratioContactsFilled', 'filled', 'contacts', 'index', `trails of ${filled} rows of an NDA and three contacts`),
      ratioFigure(
        'diffs.ratioContactsFilledWhole',
        'filled',
        'contacts',
        'whole',
        'the same, the index of the other entities whole (before AuditOtherEntityRefs)',
      ),
      p99('filled', 'index', 'diffs.batchP99MsFilledIndex'),
      p99('filled', 'dropped', 'diffs.batchP99MsFilledDropped'),
    );
  }
  return figures;
}
