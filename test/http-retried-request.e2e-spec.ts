import { Body, Controller, type INestApplication, Post, ServiceUnavailableException } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { eventually, nothingPending } from './support/app';
import { TestPostgres } from './support/postgres';
import { createOrdersDatabase, RetryOnceInterceptor, startAuditApp } from './support/tx-app';

// docs/GUIDE.md, "Every mutation is audited, once" and "Order of interceptors": an interceptor
// outside the audit interceptor that retries a failed request (rxjs `retry`, for a serialization
// failure or a deadlock) runs the handler again; the last attempt counts. A request whose second
// attempt committed and answered 201 has one success row, and a record() row committed by that
// attempt is the request's row (no second row for the first attempt's failure).

/** Attempts seen per tag, so that each request's first attempt fails and its second one commits. */
const attempts = new Map<string, number>();

@Controller('orders')
class OrdersController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async place(@Body() body: { tag: string; record?: boolean }): Promise<{ id: string }> {
    const attempt = (attempts.get(body.tag) ?? 0) + 1;
    attempts.set(body.tag, attempt);
    return this.db.transaction(async (manager) => {
      const [{ id }] = (await manager.query('INSERT INTO orders (tag, attempt) VALUES ($1, $2) RETURNING id::text AS id', [
        body.tag,
        attempt,
      ])) as { id: string }[];
      // The first attempt meets a transient failure (as a serialization failure would) and rolls back.
      if (attempt === 1) throw new ServiceUnavailableException('could not serialize access');
      if (body.record)
        await this.audit.record({ action: 'order_placed', entityType: 'Order', entityId: id, requestId: body.tag }, { manager });
      return { id };
    });
  }
}

interface Row {
  action: string;
  outcome: string;
  status: number | null;
}

describe.each(['express', 'fastify'] as const)('a request retried by an outer interceptor (%s)', (platform) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = `retried_request_${platform}`;

  const rowsOf = (tag: string) =>
    db.query<Row>(
      `SELECT action, outcome, (metadata->>'statusCode')::int AS status FROM audit_log WHERE request_id = $1 ORDER BY occurred_at, id`,
      [tag],
      database,
    );
  const committed = async (tag: string) =>
    (await db.query<{ attempt: number }>('SELECT attempt FROM orders WHERE tag = $1', [tag], database)).map((row) => row.attempt);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await createOrdersDatabase(db, database);
    app = await startAuditApp(db, {
      database,
      platform,
      controllers: [OrdersController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: RetryOnceInterceptor }],
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('records the retried request that committed and answered 201 as one success row', async () => {
    const tag = `${platform}-plain`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', tag).send({ tag }).expect(201);
    expect(await committed(tag)).toEqual([2]);
    const rows = await eventually(async () => {
      const found = await rowsOf(tag);
      return found.length > 0 && found;
    });
    expect(rows).toEqual([{ action: 'orders.place', outcome: 'success', status: 201 }]);
  });

  it('writes no second row beside the record() row the retried attempt committed', async () => {
    const tag = `${platform}-record`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', `${tag}-request`).send({ tag, record: true }).expect(201);
    expect(await committed(tag)).toEqual([2]);
    // A later request's row, then nothing pending: every row of this one is written (batches in flight may commit out of order).
    const later = `${platform}-later`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    await nothingPending(app);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([]);
  });
});
