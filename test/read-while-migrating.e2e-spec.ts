import { type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Client } from 'pg';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditQueryService, AuditReadError } from '../src/audit';
import { eventually } from './support/app';
import { sleep, TestPostgres } from './support/postgres';

// A DataSource left to the module (`manualInitialization`, README step 1's failsafe start) is
// connected in the background, its migrations included, and TypeORM calls it initialized before
// they have run. A read in that window must answer as the guide says of a database not connected
// yet (`AUDIT_READ_UNAVAILABLE`, try again), not as a failure that tells the operator to run the
// CreateAuditLog migration the module is running. Here another session holds the migrations table
// locked, so the module's migrations wait as long as the suite needs.
describe('reads while the module runs the audit migrations', () => {
  let db: TestPostgres;
  let blocker: Client;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    blocker = await db.connect();
    // TypeORM's own migrations table, as it makes it: the module's run reads it first, and waits here.
    await blocker.query('CREATE TABLE migrations (id SERIAL PRIMARY KEY, "timestamp" bigint NOT NULL, name varchar NOT NULL)');
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE migrations IN ACCESS EXCLUSIVE MODE');
  }, 60_000);

  afterAll(async () => {
    await blocker?.query('ROLLBACK').catch(() => undefined);
    await blocker?.end();
    await Promise.race([app?.close(), sleep(10_000)]);
    await db?.stop();
  }, 30_000);

  it('are refused as unavailable until the migrations have run, then answer', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
          manualInitialization: true,
        }),
        AuditModule.forRoot({ auditHttp: false, writeTimeoutMs: 500 }),
      ],
    }).compile();
    app = await moduleRef.init();
    const queries = app.get(AuditQueryService);
    const waiting = await eventually(
      async () => {
        const rows = await db.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%migrations%'",
        );
        return Number(rows[0].n) > 0;
      },
      20_000,
      'the module’s migrations waiting for the lock',
    );
    expect(waiting).toBe(true);

    const refused = await queries.history('NDA', 'nda-1').then(
      () => 'answered',
      (error: unknown) => (error instanceof AuditReadError ? error.code : String(error)),
    );
    expect(refused).toBe('AUDIT_READ_UNAVAILABLE');

    await blocker.query('COMMIT');
    const answered = await eventually(
      () =>
        queries.history('NDA', 'nda-1').then(
          (page) => page.items.length === 0,
          () => false,
        ),
      20_000,
      'a read answered once the migrations have run',
    );
    expect(answered).toBe(true);
  }, 60_000);
});
