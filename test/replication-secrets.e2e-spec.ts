// With a DataSource configured with replication (`replication: { master, slaves }`), the
// connection's own user, password and host are taken from `replication.master` and each of
// `replication.slaves`, and removed from the error text shown on `/health`, on stderr and in Sentry
// (docs/FAILURES.md, "Safe output"): when the audit role's password is changed under a running
// application, PostgreSQL refuses the writes with `password authentication failed for user
// "<role>"`, and `status().lastError` reports the refusal without the role's name.
import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

describe('an audit DataSource configured with replication, whose role is refused', () => {
  const database = 'replication_secrets';
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
    await audit.log({ action: 'written_before' });
    expect(audit.status().state).toBe('up');
    await db.query(`ALTER ROLE ${role} PASSWORD 'second-pass-2'`);
    await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
    const lastError = await eventually(
      async () => {
        await audit.log({ action: 'written_after' });
        const error = audit.status().lastError;
        return error?.message.includes('password authentication failed') ? error : undefined;
      },
      30_000,
      'a refused write',
    );
    expect(lastError.message).not.toContain(role);
  });
});
