import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditEntityChanges1766600000000 } from '../src/audit';
import { TestPostgres } from './support/postgres';

// AuditEntityChanges1766600000000 (docs/RUNBOOK.md section 14): the GIN index of
// `changes -> 'entities'` is made ON ONLY the parent and per partition, each partition's attached,
// so that the parent's index ends valid; inside TypeORM's migration transaction (its default) and
// outside one (`migrationsTransactionMode: 'none'`, CONCURRENTLY); a partition's index built
// beforehand under its name is attached, not built again; run twice, nothing changes.
describe('the migration that adds the entities index', () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 60_000);

  afterAll(async () => {
    await db?.stop();
  });

  /** Runs `migrations` on database `name` with TypeORM's transaction mode `mode`. */
  const migrate = async (name: string, migrations: readonly unknown[], mode: 'all' | 'none' = 'all') => {
    const source = new DataSource({
      type: 'postgres',
      url: db.url(name),
      migrations: migrations as never,
      migrationsTableName: 'audit_migrations',
      migrationsTransactionMode: mode,
    });
    await source.initialize();
    try {
      await source.runMigrations();
    } finally {
      await source.destroy();
    }
  };
  /** A database with every migration before this one and a few rows, some naming entities in `changes`. */
  const trailBefore = async (name: string) => {
    await db.createDatabase(name);
    await migrate(name, AUDIT_MIGRATIONS.slice(0, AUDIT_MIGRATIONS.indexOf(AuditEntityChanges1766600000000)));
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, changes, recorded_at)
       SELECT gen_random_uuid(), now() - g * interval '1 minute', 'a', 'NDA', 'e-' || g, 'success',
         CASE WHEN g % 2 = 0 THEN jsonb_build_object('entities', jsonb_build_array(jsonb_build_object('type', 'NDA', 'id', 'e-' || (g + 1)))) END, now()
       FROM generate_series(1, 20) AS g`,
      [],
      name,
    );
  };
  /** Each partition's index attached to `audit_log_entities_idx`, by partition, and whether the parent's is valid. */
  const indexState = async (name: string) => {
    const parts = await db.query<{ part: string; index: string; oid: number }>(
      `SELECT t.relname AS part, i.relname AS index, i.oid::int AS oid
       FROM pg_inherits h JOIN pg_class i ON i.oid = h.inhrelid JOIN pg_index x ON x.indexrelid = i.oid JOIN pg_class t ON t.oid = x.indrelid
       WHERE h.inhparent = 'audit_log_entities_idx'::regclass ORDER BY t.relname`,
      [],
      name,
    );
    const [{ valid }] = await db.query<{ valid: boolean }>(
      `SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'audit_log_entities_idx'::regclass`,
      [],
      name,
    );
    return { parts, valid };
  };
  const partitions = async (name: string) =>
    (
      await db.query<{ relname: string }>(
        `SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'audit_log'::regclass ORDER BY 1`,
        [],
        name,
      )
    ).map((row) => row.relname);

  it("builds every partition's index inside the migration transaction, and the parent's ends valid", async () => {
    await trailBefore('in_tx');
    await migrate('in_tx', AUDIT_MIGRATIONS);
    const state = await indexState('in_tx');
    expect(state.valid).toBe(true);
    expect(state.parts.map((p) => [p.part, p.index])).toEqual((await partitions('in_tx')).map((p) => [p, `${p}_entities_idx`]));
    // Run again (the viewer suite re-runs every migration): nothing changes.
    const source = new DataSource({ type: 'postgres', url: db.url('in_tx') });
    await source.initialize();
    try {
      const runner = source.createQueryRunner();
      await new AuditEntityChanges1766600000000().up(runner);
      await runner.release();
    } finally {
      await source.destroy();
    }
    expect(await indexState('in_tx')).toEqual(state);
  }, 60_000);

  it("builds them CONCURRENTLY outside a transaction, and attaches a partition's index built beforehand", async () => {
    await trailBefore('no_tx');
    const [legacy] = await partitions('no_tx');
    await db.query(
      `CREATE INDEX CONCURRENTLY ${legacy}_entities_idx ON ${legacy} USING gin ((changes -> 'entities') jsonb_path_ops) WITH (fastupdate = off) WHERE changes ? 'entities'`,
      [],
      'no_tx',
    );
    const [{ oid }] = await db.query<{ oid: number }>(`SELECT '${legacy}_entities_idx'::regclass::oid::int AS oid`, [], 'no_tx');
    await migrate('no_tx', AUDIT_MIGRATIONS, 'none');
    const state = await indexState('no_tx');
    expect(state.valid).toBe(true);
    expect(state.parts.map((p) => p.part)).toEqual(await partitions('no_tx'));
    expect(state.parts.find((p) => p.part === legacy)?.oid).toBe(oid);
    // The index is the one a history page reads the other entities' rows through.
    const client = new Client({ connectionString: db.url('no_tx') });
    await client.connect();
    const plan = await client
      .query<{ 'QUERY PLAN': string }>(
        `SET enable_seqscan = off; EXPLAIN SELECT id FROM audit_log WHERE changes ? 'entities' AND changes -> 'entities' @> '[{"type":"NDA","id":"e-3"}]'`,
      )
      .then((results) => (results as unknown as { rows: { 'QUERY PLAN': string }[] }[])[1].rows)
      .finally(() => client.end());
    expect(plan.map((row) => row['QUERY PLAN']).join('\n')).toContain(`${legacy}_entities_idx`);
  }, 60_000);
});
