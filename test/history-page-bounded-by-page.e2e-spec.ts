import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { historyReads } from '../src/audit/query/history-sql';
import { startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// Promise (docs/GUIDE.md, "Reading the trail"): "Pagination is keyset … so page 100 costs what page
// 1 does"; "Each spelling of the entity's own rows is one more bounded read of the indexes"; and
// (src/audit/query/history-sql.ts) "The entity's rows are read off `audit_log_entity_time_idx`,
// newest first and bounded by the page; the others through the GIN index … all of them past the
// cursor, then sorted: a page costs the two lookups plus the sort of the entity's changes on other
// rows, whatever the table's size". Reads must never hold the writer back (docs/GUIDE.md,
// "Reads never disturb writes").
//
// Break: every row the module writes about an audited entity also holds that entity's change in
// `changes.entities`. The GIN branch of history() (`changes -> 'entities' @> …`, under `OFFSET 0`)
// therefore fetches every row of the entity's own history from the heap, each one only to be
// dropped by the `IS DISTINCT FROM` filter that leaves the own rows to the time index. One page of
// a much-changed entity (an account, a settings row, a contract edited daily for years) reads its
// whole history: the cost grows with the history, not with the page, up to `readTimeoutMs` of the
// server's time per page, on the same server and disks the audit writes use, after which the
// history of that entity cannot be read at all (AUDIT_READ_TIMEOUT).
//
// Observed: for a contract with 20 000 rows of its own (and no change on any other row), the
// first page of 50 fetches 20 051 rows (EXPLAIN ANALYZE): 51 off the time index, and a Bitmap Heap
// Scan of the GIN branch that returns 0 rows and removes 20 000 by its filter (about 47 ms of the
// server's time for one page of 50 here, growing with the history), where the promise allows
// the page (51 rows) plus the changes on other rows (0).
//
// Severity: medium (a history page's cost unbounded by the page; a hot entity's history becomes
// unreadable and each try costs the database up to readTimeoutMs).
//
// Fix guess: keep the own rows out of the GIN branch in the index itself (a partial index, or an
// index key that holds the row's own entity apart), or read the GIN branch newest first bounded by
// the page (its own keyset walk through an index on (occurred_at, id) of the matching rows), so
// that the rows it fetches are bounded by the page.

const CONTRACT = '0193a1c2-7b1e-7c3d-9e4f-0123456789ab';
const OWN_ROWS = 20_000;

interface PlanNode {
  'Node Type': string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

/** Rows a plan's scans of the table (its partitions) fetched: returned or dropped by a filter. */
function rowsFetched(node: PlanNode): number {
  const own =
    node['Relation Name'] !== undefined
      ? ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) *
        (node['Actual Loops'] ?? 1)
      : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsFetched(child), 0);
}

describe('probe: one history page of an entity with a long history of its own', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' });
    // What the module writes for each update of the contract: the row about it, holding its change.
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome, user_id, entity_type, entity_id, changes)
       SELECT gen_random_uuid(), now() - make_interval(secs => i), 'contract_updated', 'success', 'user-1', 'Contract', $1,
         jsonb_build_object('body', jsonb_build_object('title', 'v' || i), 'entities', jsonb_build_array(jsonb_build_object(
           'type', 'Contract', 'id', $1::text, 'op', 'update', 'fields', jsonb_build_object('title', jsonb_build_array('v' || (i + 1), 'v' || i)))))
       FROM generate_series(1, $2::int) AS i`,
      [CONTRACT, OWN_ROWS],
    );
    await db.query('ANALYZE audit_log');
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('reads about one page of rows for the first page, not the whole history', async () => {
    const { select } = historyReads('audit_log', 'Contract', CONTRACT, undefined, 50);
    const [{ 'QUERY PLAN': plans }] = await db.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${select}`);
    const fetched = rowsFetched(plans[0].Plan);
    // The page: 51 rows off the time index; the changes on other rows: none.
    const scans: string[] = [];
    const walk = (node: PlanNode): void => {
      if (node['Relation Name'] !== undefined)
        scans.push(
          `${node['Node Type']} on ${node['Relation Name']}: ${node['Actual Rows']} rows, ${node['Rows Removed by Filter'] ?? 0} removed by filter`,
        );
      (node.Plans ?? []).forEach(walk);
    };
    walk(plans[0].Plan);
    // Failing, the scans that read rows are named (`Bitmap Heap Scan on …: 0 rows, 20000 removed by filter`).
    const working = scans.filter((line) => !line.endsWith(': 0 rows, 0 removed by filter'));
    expect(fetched <= 200 ? 'bounded by the page' : `${fetched} rows fetched: ${working.join('; ')}`).toBe('bounded by the page');
  }, 60_000);
});
