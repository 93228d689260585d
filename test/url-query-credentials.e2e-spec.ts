// docs/FAILURES.md, "Safe output": no user or host of the connection reaches `/health` or stderr.
// A DataSource `url` may carry its user and password as query parameters
// (`postgres://host/db?user=…&password=…`): pg logs in as that role, so a refused login names it
// (`password authentication failed for user "…"`); the role is a secret like a URL's user info.
import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

describe('an audit DataSource whose url carries its user and password as query parameters, whose role is refused', () => {
  const database = 'url_query_credentials';
  const role = 'ledger_writer';
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD 'first-pass-1'`);
    const { host } = new URL(db.url(database));
    const url = `postgres://${host}/${database}?user=${role}&password=first-pass-1`;
    @Module({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url, entities: [AuditLog], migrations: [...AUDIT_MIGRATIONS], migrationsRun: true }),
        AuditModule.forRoot({ writeTimeoutMs: 2000, auditHttp: false }),
      ],
    })
    class QueryCredentialsAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [QueryCredentialsAppModule] }).compile();
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

  it('connects as the role the query parameters name', async () => {
    const [row] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [role]);
    expect(row.n).toBeGreaterThan(0);
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
