import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { eventually, postAndHold, nothingPending } from './support/app';
import { TestPostgres } from './support/postgres';
import { startAuditApp } from './support/tx-app';

// docs/GUIDE.md, "Every mutation is audited, once": a request whose client went away is recorded
// when the pipeline ends its response, at most `unfinishedAfterMs` after the client left. A
// handler that commits its change and then waits on something that never answers (a webhook
// without a timeout, a lock on another system) still gets its row at that bound: outcome
// `failure`, `metadata.reason: "unfinished"`, no status code; what the request does later (here:
// it ends after all) writes no second row. One still waiting when the app shuts down is recorded
// then, the same way, rather than lost with its timer.

/** Handlers waiting on the "external system". */
const hung: (() => void)[] = [];
const started = new Map<string, () => void>();

@Controller('payments')
class PaymentsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async pay(@Body() body: { tag: string; hang?: boolean }): Promise<{ ok: true }> {
    await this.db.query('INSERT INTO payment (tag) VALUES ($1)', [body.tag]);
    started.get(body.tag)?.();
    // The notification that never answers (until the test lets it).
    if (body.hang) await new Promise<void>((resolve) => hung.push(resolve));
    return { ok: true };
  }
}

interface Row {
  action: string;
  outcome: string;
  reason: string | null;
  status: string | null;
}

describe('a handler that hangs after committing, its client gone', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = 'unfinished_request';
  const rowsOf = (tag: string) =>
    db.query<Row>(
      `SELECT action, outcome, metadata->>'reason' AS reason, metadata->>'statusCode' AS status FROM audit_log WHERE request_id = $1`,
      [tag],
      database,
    );

  /** An app on the test database, its audit module given `options`. */
  async function startApp(options: { unfinishedAfterMs?: number }): Promise<INestApplication<Server>> {
    return startAuditApp(db, { database, audit: { writeTimeoutMs: 1000, ...options }, controllers: [PaymentsController] });
  }

  /** Sends a payment that hangs in its handler after committing, and leaves once the handler has it. */
  async function payAndLeave(on: INestApplication<Server>, tag: string): Promise<void> {
    const inHandler = new Promise<void>((resolve) => started.set(tag, resolve));
    const client = await postAndHold(on, '/payments', { tag, hang: true }, { 'x-request-id': tag }, inHandler);
    // The client's own timeout.
    client.destroy();
  }

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query('CREATE TABLE payment (tag text NOT NULL)', [], database);
    app = await startApp({ unfinishedAfterMs: 1000 });
  }, 60_000);

  afterAll(async () => {
    for (const release of hung) release();
    await app?.close();
    await db?.stop();
  });

  it('records the committed mutation as unfinished once its client has gone, and nothing more when it ends', async () => {
    const tag = 'hung-1';
    await payAndLeave(app, tag);
    expect(await db.query('SELECT tag FROM payment WHERE tag = $1', [tag], database)).toEqual([{ tag }]);
    const rows = await eventually(
      async () => {
        const found = await rowsOf(tag);
        return found.length > 0 && found;
      },
      15_000,
      'a row for the committed payment',
    ).catch(() => []);
    expect(rows).toEqual([{ action: 'payments.pay', outcome: 'failure', reason: 'unfinished', status: null }]);

    // The handler ends after all, and Nest ends the response: the request has its row already.
    for (const release of hung.splice(0)) release();
    // A later request's row, then nothing pending: every row of this one is written (batches in flight may commit out of order).
    await request(app.getHttpServer()).post('/payments').set('x-request-id', 'later').send({ tag: 'later' }).expect(201);
    await eventually(async () => (await rowsOf('later')).length > 0);
    await nothingPending(app);
    expect(await rowsOf(tag)).toHaveLength(1);
  }, 40_000);

  it('records a request still waiting for its end when the app shuts down', async () => {
    const other = await startApp({});
    const tag = 'hung-at-shutdown';
    await payAndLeave(other, tag);
    const server = other.getHttpServer();
    // The server has seen the client leave.
    await eventually(() => new Promise<boolean>((resolve) => server.getConnections((_, count) => resolve(count === 0))));
    await other.close();
    expect(await rowsOf(tag)).toEqual([{ action: 'payments.pay', outcome: 'failure', reason: 'unfinished', status: null }]);
  }, 40_000);
});
