// PROMISE (docs/GUIDE.md, "Every mutation is audited, once"): "exactly one row per request …
// A request that has not ended `unfinishedAfterMs` … after its client left … is recorded then, as
// a `failure` with `reason: "unfinished"` …; what it does later writes no second row".
//
// BREAK: the handler, still running past the deadline, goes on to its transaction and writes its
// row with `AuditService.record(entry, { manager })`, as the atomic-audit pattern does. record()
// inserts its row inside the transaction whatever the request's state: the request now has two
// rows, the `unfinished` failure and the `record()` success, which contradict each other.
//
// OBSERVED: rows of the request: [{ transfers.send, failure, unfinished }, { transfer_sent,
// success }] (expected one row). The record() row carries the request id explicitly, as the
// project's own record() suites do (record() does not take it from the request); without it the
// second row is there all the same, only not found by request id.
//
// SEVERITY: low-medium (two rows for one request, one saying it failed, one that it succeeded;
// arguably by design, since record() always writes its row: then the docs' "what it does later
// writes no second row" needs its exception for record()).
//
// FIX GUESS: once the request is recorded as unfinished, let a later record() in its context
// write its row without the request's id (or mark it as a late row in metadata), or say in the
// docs that a record() after the deadline is a row of its own.
import { Body, Controller, type INestApplication, Module, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { request as httpRequest, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

const waiting = new Map<string, () => void>();
const started = new Map<string, () => void>();
const finished = new Map<string, () => void>();

@Controller('transfers')
class TransfersController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async send(@Body() body: { tag: string }): Promise<{ ok: true }> {
    started.get(body.tag)?.();
    // The fraud check that answers late.
    await new Promise<void>((resolve) => waiting.set(body.tag, resolve));
    await this.db.transaction(async (manager) => {
      await manager.query('INSERT INTO transfer (tag) VALUES ($1)', [body.tag]);
      await this.audit.record({ action: 'transfer_sent', entityType: 'Transfer', requestId: body.tag }, { manager });
    });
    finished.get(body.tag)?.();
    return { ok: true };
  }
}

describe('a request recorded as unfinished whose handler then writes its record() row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = 'unfinished_then_record';
  const rowsOf = (tag: string) =>
    db.query<{ action: string; outcome: string; reason: string | null }>(
      `SELECT action, outcome, metadata->>'reason' AS reason FROM audit_log WHERE request_id = $1 ORDER BY occurred_at`,
      [tag],
      database,
    );

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query('CREATE TABLE transfer (tag text NOT NULL)', [], database);
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(database),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ writeTimeoutMs: 1000, unfinishedAfterMs: 100 }),
      ],
      controllers: [TransfersController],
    })
    class UnfinishedRecordModule {}
    const moduleRef = await Test.createTestingModule({ imports: [UnfinishedRecordModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
    await partitionsChecked(app);
  }, 60_000);

  afterAll(async () => {
    for (const release of waiting.values()) release();
    await app?.close();
    await db?.stop();
  });

  it('keeps the one row it has', async () => {
    const tag = 'late-record-1';
    const { port } = app.getHttpServer().address() as AddressInfo;
    const inHandler = new Promise<void>((resolve) => started.set(tag, resolve));
    const done = new Promise<void>((resolve) => finished.set(tag, resolve));
    const payload = JSON.stringify({ tag });
    const client = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/transfers',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-request-id': tag },
    });
    client.on('error', () => undefined);
    client.end(payload);
    await inHandler;
    client.destroy();
    await eventually(async () => (await rowsOf(tag)).length > 0, 15_000, 'the unfinished row');
    waiting.get(tag)?.();
    await done;
    expect(await db.query('SELECT tag FROM transfer WHERE tag = $1', [tag], database)).toEqual([{ tag }]);
    expect(await rowsOf(tag)).toEqual([{ action: 'transfers.send', outcome: 'failure', reason: 'unfinished' }]);
  }, 30_000);
});
