import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { nothingPending } from './support/app';
import { TestPostgres } from './support/postgres';
import { numbersOn, startTxApp, txRows, type TxRow } from './support/tx-app';

// An interceptor bound with APP_INTERCEPTOR in the root module sits outside the audit interceptor:
// it opens a transaction per request and commits it after the handler. The row must say what the
// client got and carry what committed, in both modes; in sync mode it is durable when the response
// arrives.
describe.each([
  ['sync', 'express'],
  ['async', 'express'],
  ['sync', 'fastify'],
] as const)('%s mode (%s) under a transaction-per-request interceptor outside the audit one', (mode, platform) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = `outer_${mode}_${platform}`;

  const book = (number: string, body: { twice?: boolean; record?: boolean } = {}) =>
    request(app.getHttpServer())
      .post('/booked')
      .set('x-request-id', number)
      .send({ number, ...body });
  const invoices = async (number: string) =>
    (await db.query<{ number: string }>('SELECT number FROM invoice WHERE number = $1', [number], database)).length;

  /** The rows of a request: at once in sync mode (durable before the response), else once `count` have come. */
  async function rowsOf(requestId: string, count = 1): Promise<TxRow[]> {
    if (mode === 'sync') return txRows(db, database, requestId);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const rows = await txRows(db, database, requestId);
      if (rows.length >= count || Date.now() > deadline) return rows;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** In async mode, a row not written yet would be written before that of a later request. */
  async function afterLaterRequest(): Promise<void> {
    if (mode === 'sync') return;
    const later = `${mode}-later-${Date.now()}`;
    await book(later).expect(201);
    await rowsOf(later);
    // Batches in flight may commit out of order: nothing pending means every earlier row is written.
    await nothingPending(app);
  }

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startTxApp(db, { database, audit: { mode }, requestTransactions: true, platform });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('carries the change committed after the handler', async () => {
    await book(`${mode}-ok`).expect(201);
    const rows = await rowsOf(`${mode}-ok`);
    expect(rows).toEqual([expect.objectContaining({ action: 'booked.book', outcome: 'success', status: 201 })]);
    expect(numbersOn(rows[0])).toEqual([`${mode}-ok`]);
  });

  it('says failure and 500 when the COMMIT fails (a deferred constraint), with no change', async () => {
    await book(`${mode}-dup`, { twice: true }).expect(500);
    expect(await invoices(`${mode}-dup`)).toBe(0);
    expect(await rowsOf(`${mode}-dup`)).toEqual([
      { action: 'booked.book', outcome: 'failure', status: 500, changes: { body: { number: `${mode}-dup`, twice: true } } },
    ]);
  });

  it('takes the record() row written in the request’s transaction as the request’s row once it commits', async () => {
    await book(`${mode}-rec`, { record: true }).expect(201);
    await afterLaterRequest();
    const rows = await rowsOf(`${mode}-rec`);
    expect(rows).toEqual([expect.objectContaining({ action: 'invoice_booked', outcome: 'success' })]);
    expect(numbersOn(rows[0])).toEqual([`${mode}-rec`]);
  });

  it('writes the request’s own failure row when the COMMIT of its record() row fails', async () => {
    await book(`${mode}-rec-dup`, { twice: true, record: true }).expect(500);
    expect(await invoices(`${mode}-rec-dup`)).toBe(0);
    expect(await rowsOf(`${mode}-rec-dup`)).toEqual([
      {
        action: 'booked.book',
        outcome: 'failure',
        status: 500,
        changes: { body: { number: `${mode}-rec-dup`, twice: true, record: true } },
      },
    ]);
  });
});
