// Promise (docs/FAILURES.md, "Safe output"): "Error text shown on `/health`, on stderr and in Sentry
// is sanitized: no connection URL, host, user or password … as do the connection's own host, user
// and password (of 3 characters or more) wherever they appear".
// Break: the connection's own secrets are read from the DataSource's top-level `url`, `host`,
// `username` and `password` only (`connectionSecrets()` in src/audit/db-error.ts). A DataSource
// with replication (`replication: { master, slaves }`, TypeORM's documented way to read from
// replicas) keeps them under `replication.master` and `replication.slaves[]`, and the module's
// writes go to the master (`dataSourcePool()` uses `driver.master`).
// Observed: once the audit role's password is changed (a rotated credential), the writes fail with
// PostgreSQL's `password authentication failed for user "<role>"`, and `status().lastError` (what
// `/health` shows) names the role, as do the `audit.db_write_failed` and `audit.buffered` stderr
// lines.
// Severity: low (a user name, not a password; only with replication configured). Fix guess: take
// the secrets of `replication.master` and of each of `replication.slaves` too (and of `extra`,
// where `pg` options may be given), in `connectionSecrets()`.
import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

describe('an audit DataSource configured with replication, whose role is refused', () => {
  const database = 'probe_replication';
  const role = 'ledger_writer';
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD 'first-pass-1'`);
    const url = db.url(database, role, 'first-pass-1');
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          replication: { master: { url }, slaves: [{ url }] },
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ writeTimeoutMs: 2000, auditHttp: false }),
      ],
    })
    class ReplicatedAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [ReplicatedAppModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
    await partitionsChecked(app);
  }, 60_000);

  afterAll(async () => {
    // Lets the module write again before it shuts down.
    await db?.query(`ALTER ROLE ${role} PASSWORD 'first-pass-1'`).catch(() => undefined);
    await app?.close();
    await db?.stop();
  });

  it('does not name the role in the error it reports', async () => {
    const audit = app.get(AuditService);
    await audit.log({ action: 'probe_before' });
    expect(audit.status().state).toBe('up');
    await db.query(`ALTER ROLE ${role} PASSWORD 'second-pass-2'`);
    await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
    const lastError = await eventually(
      async () => {
        await audit.log({ action: 'probe_after' });
        const error = audit.status().lastError;
        return error?.message.includes('password authentication failed') ? error : undefined;
      },
      30_000,
      'a refused write',
    );
    expect(lastError.message).not.toContain(role);
  });
});
