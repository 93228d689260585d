// Promise (README.md, GUIDE.md "Least privilege"): "the migrations are run by the table's owner";
// the migration AuditPartitionUpkeep1765800000000 removes the personal columns' planner statistics
// "as far as this role can" and, for a role that is not a superuser on PostgreSQL before 18, says
// so in a NOTICE ("a superuser removes them, see docs/RUNBOOK.md"), which tells a managed service
// without a superuser what to run.
//
// Break: its DO block reads `pg_catalog.pg_statistic` to find the samples before it decides what
// this role can do. PostgreSQL lets only a superuser read that catalog, so for any other owner
// the statement fails: the migration (and `migrationsRun: true`, so the app's start) stops at
// `permission denied for table pg_statistic` instead of leaving the NOTICE. On PostgreSQL 18 (the
// suite's server), where `pg_clear_attribute_stats` lets the owner clear them (RUNBOOK: "On a
// managed service without a superuser, upgrade to PostgreSQL 18 and run, as the table's owner"),
// the read comes first and fails all the same.
//
// Observed: runMigrations() rejects with "permission denied for table pg_statistic" for a
// non-superuser role that owns the database and its schema.
// Severity: high for deployments without a superuser (managed PostgreSQL): the trail's
// migrations cannot be run past 1765800000000 by the table's owner.
// Fix guess: find the samples through the `pg_stats` view (readable for the table's owner), or
// take the superuser branch only when `rolsuper`, before touching `pg_statistic`.
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../src/audit';
import { TestPostgres } from './support/postgres';

describe('probe: the migrations run by a table owner that is not a superuser', () => {
  const database = 'probe_owner_migrations';
  const OWNER = { user: 'audit_owner', password: 'audit-owner-pw' };
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.query(`CREATE ROLE ${OWNER.user} LOGIN PASSWORD '${OWNER.password}'`);
    await db.createDatabase(database);
    await db.query(`ALTER DATABASE ${database} OWNER TO ${OWNER.user}`);
    await db.query(`ALTER SCHEMA public OWNER TO ${OWNER.user}`, [], database);
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('creates the trail (at most a NOTICE about planner statistics), every migration applied', async () => {
    const source = new DataSource({
      type: 'postgres',
      url: db.url(database, OWNER.user, OWNER.password),
      migrations: [...AUDIT_MIGRATIONS],
      logging: false,
    });
    await source.initialize();
    let failure: string | undefined;
    try {
      await source.runMigrations();
    } catch (error) {
      failure = (error as Error).message;
    } finally {
      await source.destroy();
    }
    const applied = (await db.query('SELECT count(*)::int AS n FROM migrations', [], database))[0].n;
    expect({ failure, applied }).toEqual({ failure: undefined, applied: AUDIT_MIGRATIONS.length });
  }, 90_000);
});
