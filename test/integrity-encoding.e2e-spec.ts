import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, verifyTrail } from '../src/audit';
import { sealOnce } from '../src/audit/integrity/seal-store';
import { keyRange, LEAF_FIELDS, LEAF_SQL, leafHash, SEALED_COLUMNS_SQL, type SealedRow } from '../src/audit/integrity/row-encoding';
import { TestPostgres } from './support/postgres';

// The sealer and the verifier let PostgreSQL hash each row (LEAF_SQL); docs/INTEGRITY.md defines
// the leaf by its encoding (leafHash), which an auditor can recompute from the rows alone. Both
// must agree on every value a row can hold.
describe('the leaf hash computed by PostgreSQL', () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
    const migrator = new DataSource({ type: 'postgres', url: db.url(), migrations: [...AUDIT_MIGRATIONS] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
  }, 60_000);

  afterAll(() => db?.stop());

  it('is the documented encoding hashed, for NULLs, empty texts, quotes, accents, emoji, nested jsonb and microseconds', async () => {
    const values = [
      [
        '01937a4c-0000-7000-8000-000000000001',
        '2026-11-28 10:00:00.123456+00',
        'nda_created',
        null,
        null,
        null,
        'success',
        null,
        null,
        null,
        null,
        null,
      ],
      [
        '01937a4c-0000-7000-8000-000000000002',
        '1999-12-31 23:59:59.999999+05',
        'a',
        '',
        '',
        '',
        'failure',
        '::1',
        'Grüße "quoted" \\ 👩‍👩‍👧',
        'r\n1',
        '{"b": [1, 2.50, {"é": null}], "a": "x\\ty"}',
        '{"z": true, "aa": 1e3}',
      ],
      [
        '01937a4c-0000-7000-8000-000000000003',
        '1970-01-01 00:00:00+00',
        'x'.repeat(70_000),
        'NDA',
        '7',
        '42',
        'success',
        '10.0.0.1',
        'ua',
        'req',
        '[]',
        '"text"',
      ],
    ];
    for (const v of values) {
      await db.query(
        `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, request_id, changes, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        v,
      );
    }
    const rows = await db.query<{ leaf: Buffer } & Record<string, string | null>>(
      `SELECT ${SEALED_COLUMNS_SQL}, ${LEAF_SQL} AS leaf FROM audit_log, ${LEAF_FIELDS} ORDER BY id`,
    );
    expect(rows).toHaveLength(3);
    for (const { leaf, ...columns } of rows) {
      const row: SealedRow = Object.keys(columns)
        .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))
        .map((key) => columns[key]);
      // 14 columns of version 1, and `commitments` (NULL: version 2 is for rows written with the privacy option).
      expect(row).toHaveLength(15);
      expect(row[14]).toBeNull();
      expect(leaf.toString('hex')).toBe(leafHash(row).toString('hex'));
    }
    expect(rows[0].c2).toBe(`${Date.parse('2026-11-28T10:00:00.123Z')}456`);
    expect(rows[1].c11).toBe('{"a": "x\\ty", "b": [1, 2.50, {"é": null}]}');
  });

  it('orders rows by the number of their transaction, not its text (tx 9 before tx 10), across capped seals', async () => {
    await db.createDatabase('ordering');
    const url = db.url('ordering');
    const dataSource = new DataSource({ type: 'postgres', url, migrations: [...AUDIT_MIGRATIONS] });
    await dataSource.initialize();
    try {
      await dataSource.runMigrations();
      // Chosen transaction ids: the trigger that sets tx is off while they are inserted.
      await dataSource.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_set_tx');
      for (const tx of [9, 10, 100]) {
        await dataSource.query(
          `INSERT INTO audit_log (id, occurred_at, action, outcome, tx)
           SELECT gen_random_uuid(), now(), 'nda_created', 'success', $1 FROM generate_series(1, 70)`,
          [tx],
        );
      }
      const runner = dataSource.createQueryRunner();
      try {
        for (let i = 0; i < 3; i++) await sealOnce(runner, 'audit_log', { maxRows: 100, signingKey: null });
      } finally {
        await runner.release();
      }
      const seals = await dataSource.query<{ last_tx: string; row_count: number }[]>(
        'SELECT last_tx::text, row_count FROM audit_seal AS s ORDER BY s.seq',
      );
      expect(seals).toEqual([
        { last_tx: '10', row_count: 100 },
        { last_tx: '100', row_count: 100 },
        { last_tx: '100', row_count: 10 },
      ]);
    } finally {
      await dataSource.destroy();
    }
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      const report = await verifyTrail(client);
      expect(report).toMatchObject({ anomalyCount: 0, rowsVerified: 210, sealsVerified: 3, rowsUnsealed: 0 });
    } finally {
      await client.end();
    }
  });

  it("reads one seal's range through the index on tx, once the table is analyzed, not by scanning the whole table", async () => {
    const name = 'seal_ranges';
    await db.createDatabase(name);
    const migrator = new DataSource({ type: 'postgres', url: db.url(name), migrations: [...AUDIT_MIGRATIONS] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    // 200 transactions of 500 rows: the table spans many block ranges, each seal a few of them.
    await db.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_set_tx', [], name);
    await db.query(
      `DO $$ BEGIN FOR t IN 1..200 LOOP
         INSERT INTO audit_log (id, occurred_at, action, outcome, tx)
           SELECT gen_random_uuid(), now(), 'nda_created', 'success', t FROM generate_series(1, 500);
       END LOOP; END $$`,
      [],
      name,
    );
    await db.query('VACUUM ANALYZE audit_log', [], name);
    const first = (tx: number) => ({ tx: String(tx), id: '00000000-0000-0000-0000-000000000000' });
    const { where, parameters } = keyRange(first(100), first(102));
    const [{ 'QUERY PLAN': plans }] = await db.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM audit_log WHERE ${where}`,
      parameters,
      name,
    );
    // Two transactions' rows (1000 of 100 000) are wanted: the scan reads the few block ranges of
    // the BRIN index around them (lossy: about 8000 rows each here), not the table.
    expect(rowsRead(plans[0].Plan)).toBeLessThan(25_000);
  });
});

/** A node of `EXPLAIN (ANALYZE, FORMAT JSON)`, as far as the test reads it. */
interface PlanNode {
  'Node Type': string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** Table rows the plan's scans read: those they returned and those they threw away. */
function rowsRead(node: PlanNode): number {
  const own = ['Seq Scan', 'Bitmap Heap Scan', 'Index Scan'].includes(node['Node Type'])
    ? node['Actual Rows'] * node['Actual Loops'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)
    : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsRead(child), 0);
}
