import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { historyReads } from '../src/audit/query/history-sql';
import { startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Reading the trail": "Pagination is keyset … so page 100 costs what page 1 does".
// Every row the module writes about an audited entity also holds that entity's change in
// `changes.entities`; history() finds the entity's changes on other rows through
// `audit_log_other_entity_refs_idx`, whose key holds no row's own entity
// (AuditOtherEntitiesIndex1767000000000, narrowed to type and id by AuditOtherEntityRefs1767200000000). For a contract with 20 000 rows of its own, the first page
// of 50 fetches about one page of rows (EXPLAIN ANALYZE): 51 off the time index, none through the
// GIN index, where the index of all entities fetched all 20 000 own rows to drop them by a filter.

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

describe('one history page of an entity with a long history of its own', () => {
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
