// docs/GUIDE.md, "Every mutation is audited, once": a request recorded as `unfinished` has its
// row; what the handler does later writes no second row of the request, but a `record()` row it
// commits later is a row of its own transaction, written as any `record()` row is. The request
// then has two rows: the `unfinished` failure (it did not end in time), then the `record()` row
// (what it committed after). Nothing more is written when the handler finally ends.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { eventually, postAndHold, nothingPending } from './support/app';
import { TestPostgres } from './support/postgres';
import { startAuditApp } from './support/tx-app';

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
  async send(@Body() body: { tag: string; plain?: boolean }): Promise<{ ok: true }> {
    // A plain transfer: no wait, and its row is the interceptor's.
    if (body.plain) {
      await this.db.query('INSERT INTO transfer (tag) VALUES ($1)', [body.tag]);
      return { ok: true };
    }
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
    app = await startAuditApp(db, {
      database,
      audit: { writeTimeoutMs: 1000, unfinishedAfterMs: 100 },
      controllers: [TransfersController],
    });
  }, 60_000);

  afterAll(async () => {
    for (const release of waiting.values()) release();
    await app?.close();
    await db?.stop();
  });

  it('keeps its unfinished row, and the record() row committed later is written after it', async () => {
    const tag = 'late-record-1';
    const inHandler = new Promise<void>((resolve) => started.set(tag, resolve));
    const done = new Promise<void>((resolve) => finished.set(tag, resolve));
    const client = await postAndHold(app, '/transfers', { tag }, { 'x-request-id': tag }, inHandler);
    client.destroy();
    await eventually(async () => (await rowsOf(tag)).length > 0, 15_000, 'the unfinished row');
    waiting.get(tag)?.();
    await done;
    expect(await db.query('SELECT tag FROM transfer WHERE tag = $1', [tag], database)).toEqual([{ tag }]);
    // A later request's row, then nothing pending: every row of this one is written (batches in flight may commit out of order).
    const later = 'late-record-later';
    await request(app.getHttpServer()).post('/transfers').set('x-request-id', later).send({ tag: later, plain: true }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    await nothingPending(app);
    expect(await rowsOf(tag)).toEqual([
      { action: 'transfers.send', outcome: 'failure', reason: 'unfinished' },
      { action: 'transfer_sent', outcome: 'success', reason: null },
    ]);
  }, 30_000);
});
