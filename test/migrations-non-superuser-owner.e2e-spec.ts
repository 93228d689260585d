import { DataSource, type MigrationInterface } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../src/audit';
import { TestPostgres } from './support/postgres';

// README.md and GUIDE.md, "Least privilege": the migrations are run by the table's owner. On a
// managed service that owner is no superuser (the master user owns the database, or a role of its
// own may create in the schema). Every migration applies as such a role, and the partition upkeep
// migration removes the personal columns' planner statistics gathered before it as far as that role
// can: on PostgreSQL 18 (the suite's server), with `pg_clear_attribute_stats`, all of them
// (docs/PRIVACY.md, "Planner statistics").
describe('the migrations run by a table owner that is not a superuser', () => {
  const OWNER = { user: 'audit_owner', password: 'audit-owner-pw' };
  const SCHEMA_CREATOR = { user: 'trail_owner', password: 'trail-owner-pw' };
  const PERSONAL = ['user_id', 'ip', 'user_agent', 'personal'];
  let db: TestPostgres;

  const migrate = async (url: string, migrations: readonly (new () => MigrationInterface)[]) => {
    const source = new DataSource({ type: 'postgres', url, migrations: [...migrations], logging: false });
    await source.initialize();
    let failure: string | undefined;
    try {
      await source.runMigrations();
    } catch (error) {
      failure = (error as Error).message;
    }
    try {
      return { failure, applied: (await source.query('SELECT count(*)::int AS n FROM migrations'))[0].n as number };
    } finally {
      await source.destroy();
    }
  };
  /** A database owned by the owner role, its public schema too: as a managed service's master user has it. */
  const ownedDatabase = async (database: string) => {
    await db.createDatabase(database);
    await db.query(`ALTER DATABASE ${database} OWNER TO ${OWNER.user}`);
    await db.query(`ALTER SCHEMA public OWNER TO ${OWNER.user}`, [], database);
    return db.url(database, OWNER.user, OWNER.password);
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    for (const role of [OWNER, SCHEMA_CREATOR]) await db.query(`CREATE ROLE ${role.user} LOGIN PASSWORD '${role.password}'`);
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('applies every migration as the owner of the database and of its schema', async () => {
    const url = await ownedDatabase('owner_migrations');
    expect(await migrate(url, AUDIT_MIGRATIONS)).toEqual({ failure: undefined, applied: AUDIT_MIGRATIONS.length });
    const [{ owner }] = await db.query<{ owner: string }>(
      `SELECT tableowner AS owner FROM pg_tables WHERE tablename = 'audit_seal'`,
      [],
      'owner_migrations',
    );
    expect(owner).toBe(OWNER.user);
  }, 90_000);

  it('applies every migration as a role that may only create in the schema (docs/INTEGRITY.md, "Roles")', async () => {
    const database = 'creator_migrations';
    await db.createDatabase(database);
    await db.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${SCHEMA_CREATOR.user}`, [], database);
    const url = db.url(database, SCHEMA_CREATOR.user, SCHEMA_CREATOR.password);
    expect(await migrate(url, AUDIT_MIGRATIONS)).toEqual({ failure: undefined, applied: AUDIT_MIGRATIONS.length });
  }, 90_000);

  it('removes, as that owner, the personal columns planner statistics gathered before, and keeps the others', async () => {
    const database = 'owner_statistics';
    const url = await ownedDatabase(database);
    const upkeep = AUDIT_MIGRATIONS.findIndex((m) => m.name === 'AuditPartitionUpkeep1765800000000');
    expect(await migrate(url, AUDIT_MIGRATIONS.slice(0, upkeep))).toEqual({ failure: undefined, applied: upkeep });
    const asOwner = new DataSource({ type: 'postgres', url, logging: false });
    await asOwner.initialize();
    try {
      await asOwner.query('SELECT * FROM audit_log_create_partitions(1)');
      await asOwner.query(
        `INSERT INTO audit_log (id, occurred_at, action, outcome, user_id, ip, user_agent)
         SELECT gen_random_uuid(), now(), 'nda_created', 'success', 'person-' || (i % 3), '10.0.0.' || (i % 3), 'agent-' || (i % 3)
         FROM generate_series(1, 300) AS i`,
      );
      // As autovacuum's analyze would have done before.
      await asOwner.query('ANALYZE audit_log');
      const sampled = async () =>
        (
          (await asOwner.query(
            `SELECT DISTINCT attname FROM pg_stats WHERE tablename LIKE 'audit_log%' AND attname = ANY ($1) ORDER BY 1`,
            [[...PERSONAL, 'action']],
          )) as { attname: string }[]
        ).map((row) => row.attname);
      expect(await sampled()).toEqual(['action', 'ip', 'personal', 'user_agent', 'user_id']);

      expect(await migrate(url, AUDIT_MIGRATIONS)).toEqual({ failure: undefined, applied: AUDIT_MIGRATIONS.length });
      expect(await sampled()).toEqual(['action']);
    } finally {
      await asOwner.destroy();
    }
  }, 90_000);
});
