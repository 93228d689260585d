import { autovacuumOff, type TestPostgres } from './postgres';

/** The shape of the history the `history` scenario reads. */
export const HISTORY_SHAPE = {
  /** One row every 3 s, ending now: 10M rows span a year. */
  stepSeconds: 3,
  /** NDA, Invoice and User ids; an entity has about rows / entities rows, spread over the year. */
  entities: 1_000_000,
  users: 5000,
};

const AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/**
 * Rows `$1`..`$2 - 1` of history, row `g` dated by the SQL expression `at` (of `g` and further
 * parameters): entity ids drawn over {@link HISTORY_SHAPE}'s entities by a multiplicative hash (so
 * an entity's rows are spread over the whole trail, not adjacent), types 70 % NDA, 20 % Invoice,
 * 10 % User, users likewise hashed, six actions, 2 % failures, a request body of realistic size
 * (built once per 10,000 rows), and UUIDv7 ids of their own time.
 *
 * @example
 * const sql = historyFillSql(`$3::timestamptz + g * interval '1 second'`);
 */
export function historyFillSql(at: string): string {
  return `
  WITH body AS MATERIALIZED (
    SELECT k, jsonb_build_object('body', jsonb_build_object(
      'title', format('Mutual NDA for project %s (supplier onboarding)', k),
      'counterparty', format('Counterparty Holdings %s GmbH', k % 97),
      'term', jsonb_build_object('months', 24, 'autoRenew', k % 2 = 0),
      'contacts', jsonb_build_array(format('legal-%s@example.com', k % 13)))) AS changes
    FROM generate_series(0, 9999) AS k
  )
  INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, request_id, changes, metadata, recorded_at)
  SELECT uuidv7(t.at - now()), t.at,
    (ARRAY['nda_created', 'nda_updated', 'nda_updated', 'nda_signed', 'invoice_paid', 'user_login'])[g % 6 + 1],
    (ARRAY['NDA', 'NDA', 'NDA', 'NDA', 'NDA', 'NDA', 'NDA', 'Invoice', 'Invoice', 'User'])[(g * 7) % 10 + 1],
    'e-' || (g * 2654435761) % ${HISTORY_SHAPE.entities},
    'user-' || (g * 40503) % ${HISTORY_SHAPE.users},
    CASE WHEN g % 50 = 0 THEN 'failure' ELSE 'success' END,
    format('10.0.%s.%s', (g >> 8) & 255, g & 255), '${AGENT}', 'req-' || g, body.changes,
    '{"method": "PATCH", "route": "/ndas/:id", "statusCode": 200, "durationMs": 3.2}'::jsonb, t.at
  FROM generate_series($1::bigint, $2::bigint - 1) AS g
    JOIN body ON body.k = g % 10000,
    LATERAL (SELECT ${at} AS at) AS t`;
}

/** A year of traffic ending at `$3`, `$4` rows in all, one every {@link HISTORY_SHAPE}`.stepSeconds`. */
const FILL = historyFillSql(`$3::timestamptz - ($4::bigint - g) * interval '${HISTORY_SHAPE.stepSeconds} seconds'`);

/**
 * Fills `audit_log` of `database` with `rows` rows of {@link FILL}, 1M at a time in two sessions,
 * then analyzes and checkpoints; autovacuum stays off for the table. Returns the anchor (the newest row's time).
 *
 * @example
 * const end = await fillHistory(pg, 'history', 10_000_000);
 */
export async function fillHistory(pg: TestPostgres, database: string, rows: number): Promise<Date> {
  await autovacuumOff(pg, database);
  await pg.query("ALTER SYSTEM SET max_wal_size = '8GB'");
  await pg.query('SELECT pg_reload_conf()');
  const anchor = new Date();
  const started = performance.now();
  for (let done = 0; done < rows;) {
    const n = Math.min(1_000_000, rows - done);
    const half = Math.ceil(n / 2);
    await Promise.all([
      pg.query(FILL, [done, done + half, anchor.toISOString(), rows], database),
      pg.query(FILL, [done + half, done + n, anchor.toISOString(), rows], database),
    ]);
    done += n;
    console.log(`  filled ${done} rows (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  await pg.query('ANALYZE audit_log', [], database);
  await pg.query('ALTER SYSTEM RESET max_wal_size');
  await pg.query('SELECT pg_reload_conf()');
  await pg.query('CHECKPOINT');
  return anchor;
}
