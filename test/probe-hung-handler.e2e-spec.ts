import { Body, Controller, type INestApplication, Module, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { request as httpRequest, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

// PROBE (attacker A11): docs/GUIDE.md, "Every mutation is audited, once": "exactly one row per
// request, with the status the client got: on success, on failure ...". A handler commits its
// change and then waits on something that never answers (a webhook call without a timeout, a lock
// on another system). The client times out and goes away. AuditedRequest waits for the handler to
// end before it records, with no bound: the committed mutation gets no row and no stderr line for
// as long as the handler hangs (here: 15 s, with writeTimeoutMs 1000), and each such request keeps
// its tracker, request and response in memory meanwhile.

/** Handlers waiting on the "external system"; let go when the suite ends. */
const hung: (() => void)[] = [];
const started = new Map<string, () => void>();

@Controller('payments')
class PaymentsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async pay(@Body() body: { tag: string }): Promise<{ ok: true }> {
    await this.db.query('INSERT INTO payment (tag) VALUES ($1)', [body.tag]);
    started.get(body.tag)?.();
    // The notification that never answers.
    await new Promise<void>((resolve) => hung.push(resolve));
    return { ok: true };
  }
}

describe('PROBE: a handler that hangs after committing, its client gone', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = 'probe_hung_handler';

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query('CREATE TABLE payment (tag text NOT NULL)', [], database);
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(database),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ writeTimeoutMs: 1000 }),
      ],
      controllers: [PaymentsController],
    })
    class ProbeModule {}
    const moduleRef = await Test.createTestingModule({ imports: [ProbeModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
    await partitionsChecked(app);
  }, 60_000);

  afterAll(async () => {
    for (const release of hung) release();
    await app?.close();
    await db?.stop();
  });

  it('records the committed mutation once its client has gone, within a bound', async () => {
    const tag = 'hung-1';
    const { port } = app.getHttpServer().address() as AddressInfo;
    const inHandler = new Promise<void>((resolve) => started.set(tag, resolve));
    const payload = JSON.stringify({ tag });
    const client = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/payments',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-request-id': tag },
    });
    client.on('error', () => undefined);
    client.end(payload);
    await inHandler;
    // The client's own timeout.
    client.destroy();
    expect(await db.query('SELECT tag FROM payment', [], database)).toEqual([{ tag }]);
    const rows = await eventually(
      async () => {
        const found = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1', [tag], database);
        return found.length > 0 && found;
      },
      15_000,
      'a row for the committed payment',
    ).catch(() => []);
    expect(rows).toEqual([{ action: 'payments.pay' }]);
  }, 40_000);
});
