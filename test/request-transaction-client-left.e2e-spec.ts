import { Body, Controller, type INestApplication, Post, Req, Res } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { once } from 'node:events';
import { type Server } from 'node:http';
import { AuditService } from '../src/audit';
import { eventually, postAndHold, nothingPending } from './support/app';
import { TestPostgres } from './support/postgres';
import {
  createInvoiceDatabase,
  Invoice,
  numbersOn,
  RequestTransactionInterceptor,
  startAuditApp,
  type TransactionalRequest,
  txRows,
} from './support/tx-app';

// docs/GUIDE.md, "A transaction per request": with an interceptor outside the audit interceptor
// that opens a transaction for the request and commits it after the handler, the row is made after
// its COMMIT, in both modes: it carries what committed, a record() row written in that transaction
// is the request's row once it committed, and a failed COMMIT is a failure. That holds when the
// client goes away while the handler runs (a client timeout, a closed tab): the connection closing
// does not make the row; the pipeline's end of the response, after the COMMIT, does.

/** Resolves when the handler of a request (by its number) has done its writes and waits for its client to leave. */
const started = new Map<string, () => void>();
const handlerStarted = (number: string) => new Promise<void>((resolve) => started.set(number, resolve));

@Controller('booked')
class SlowBookedController {
  constructor(private readonly audit: AuditService) {}

  /** Writes through the request's transaction, then (as a slow handler would) ends only after its client has gone. */
  @Post()
  async book(
    @Req() request: TransactionalRequest,
    @Res({ passthrough: true }) response: { raw?: NodeJS.EventEmitter } & NodeJS.EventEmitter,
    @Body() body: { number: string; record?: boolean; twice?: boolean },
  ): Promise<Invoice> {
    const closed = once(response.raw ?? response, 'close');
    const manager = request.transaction;
    const invoice = await manager.save(manager.create(Invoice, { number: body.number }));
    // A duplicate number fails only at COMMIT (a deferred constraint).
    if (body.twice) await manager.save(manager.create(Invoice, { number: body.number }));
    if (body.record) {
      await this.audit.record(
        { action: 'invoice_booked', entityType: 'Invoice', entityId: invoice.id, requestId: body.number },
        { manager },
      );
    }
    started.get(body.number)?.();
    await closed;
    return invoice;
  }
}

/** One PostgreSQL for every platform and mode, a database each. */
let db: TestPostgres;

beforeAll(async () => {
  db = await TestPostgres.start();
}, 60_000);

afterAll(async () => {
  await db?.stop();
});

describe.each([
  ['async', 'express'],
  ['sync', 'express'],
  ['async', 'fastify'],
  ['sync', 'fastify'],
] as const)('%s mode (%s), a client that leaves while a transaction-per-request handler runs', (mode, platform) => {
  let app: INestApplication<Server>;
  const database = `tx_client_left_${mode}_${platform}`;

  /** Sends a POST /booked and destroys its connection once the handler has written (its transaction still open). */
  async function bookAndLeave(number: string, body: { record?: boolean; twice?: boolean }): Promise<void> {
    const client = await postAndHold(app, '/booked', { number, ...body }, { 'x-request-id': `${number}-request` }, handlerStarted(number));
    client.destroy();
  }

  const committed = async (number: string) =>
    (await db.query<{ number: string }>('SELECT number FROM invoice WHERE number = $1', [number], database)).length;

  /** Waits until the writer has written everything logged before a later request's row. */
  async function afterLaterRequest(): Promise<void> {
    const later = `${mode}-${platform}-later-${Date.now()}`;
    await bookAndLeave(later, {});
    await eventually(async () => (await committed(later)) === 1);
    await eventually(async () => (await txRows(db, database, `${later}-request`)).length > 0);
    // Batches in flight may commit out of order: nothing pending means every earlier row is written.
    await nothingPending(app);
  }

  beforeAll(async () => {
    await createInvoiceDatabase(db, database);
    app = await startAuditApp(db, {
      database,
      platform,
      entities: [Invoice],
      audit: { mode },
      controllers: [SlowBookedController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: RequestTransactionInterceptor }],
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
  });

  it('writes no second row beside the record() row its transaction committed after the client left', async () => {
    const number = `${mode}-${platform}-rec`;
    await bookAndLeave(number, { record: true });
    await eventually(async () => (await committed(number)) === 1);
    await eventually(async () => (await txRows(db, database, number)).length > 0);
    await afterLaterRequest();
    expect(await txRows(db, database, number)).toEqual([expect.objectContaining({ action: 'invoice_booked', outcome: 'success' })]);
    expect(await txRows(db, database, `${number}-request`)).toEqual([]);
  });

  it('puts the change its transaction committed after the client left on the request’s row', async () => {
    const number = `${mode}-${platform}-plain`;
    await bookAndLeave(number, {});
    await eventually(async () => (await committed(number)) === 1);
    await afterLaterRequest();
    const rows = await txRows(db, database, `${number}-request`);
    expect(rows).toHaveLength(1);
    expect(numbersOn(rows[0])).toEqual([number]);
  });

  it('does not record as a success a request whose COMMIT failed after the client left', async () => {
    const number = `${mode}-${platform}-dup`;
    await bookAndLeave(number, { twice: true });
    await eventually(async () => (await txRows(db, database, `${number}-request`)).length > 0);
    await afterLaterRequest();
    expect(await committed(number)).toBe(0);
    const rows = await txRows(db, database, `${number}-request`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual(expect.objectContaining({ outcome: 'failure' }));
  });
});
