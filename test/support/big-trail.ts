import { type Client } from 'pg';
import { type Query } from '../../src/audit/lifecycle/month-analysis';
import { monthsAgo } from './past-months';
import { type TestPostgres } from './postgres';

/**
 * Writes `count` rows spread over the month `k` months back, as an app writes them: in
 * transactions of 500 rows, in time order (one every 20 s from the month's first instant).
 */
export async function fillRowsAgo(db: TestPostgres, database: string, k: number, count: number): Promise<void> {
  for (let from = 0; from < count; from += 500) {
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome, user_id, entity_type, entity_id, changes)
       SELECT gen_random_uuid(), $1::timestamptz + make_interval(secs => i * 20), 'nda_updated', 'success', 'user-' || (i % 97),
         'nda', 'nda-' || i, jsonb_build_object('title', jsonb_build_object('from', 'draft ' || i, 'to', 'final ' || i))
       FROM generate_series($2::int + 1, $2::int + 500) AS i`,
      [monthsAgo(k).start, from],
      database,
    );
  }
}

/** Retention's `Query` over one `pg` client: the rows of a text's last statement (several in one text, as retention sends them). */
export function clientQuery(client: Client): Query {
  return async (text, parameters) => {
    const result = (await client.query(text, parameters)) as unknown;
    const last = (Array.isArray(result) ? result.at(-1) : result) as { rows?: Record<string, unknown>[] };
    return last.rows ?? [];
  };
}

/** Seals (`sealNow`, as often as it takes) until the seals hold every row they will take. */
export async function sealEverything(sealNow: () => Promise<unknown>, db: TestPostgres, database: string): Promise<void> {
  for (let sealed = -1; ;) {
    await sealNow();
    const [{ n }] = await db.query(`SELECT coalesce(sum(row_count), 0)::int AS n FROM audit_seal`, [], database);
    if (n === sealed) return;
    sealed = n as number;
  }
}
