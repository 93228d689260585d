// docs/GUIDE.md, "Order of interceptors": of a request an outer interceptor retries (rxjs
// `retry()`), the last attempt counts. A first attempt that commits a `record()` row and then
// fails (a step after the commit meets a transient error) keeps that row, which stands for that
// attempt only; the retry that commits without `record()` and answers 201 gets the request's own
// row, with that status (Express and Fastify).
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

const attempts = new Map<string, number>();

@Controller('orders')
class OrdersController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async place(@Body() body: { tag: string }): Promise<{ id: string }> {
    const attempt = (attempts.get(body.tag) ?? 0) + 1;
    attempts.set(body.tag, attempt);
    const id = await this.db.transaction(async (manager) => {
      const [row] = (await manager.query('INSERT INTO orders (tag, attempt) VALUES ($1, $2) RETURNING id::text AS id', [
        body.tag,
        attempt,
      ])) as { id: string }[];
      if (attempt === 1)
        await this.audit.record({ action: 'order_placed', entityType: 'Order', entityId: row.id, requestId: body.tag }, { manager });
      return row.id;
    });
    // The step after the commit meets a transient failure on the first attempt.
    if (attempt === 1) throw new ServiceUnavailableException('notification service busy');
    return { id };
  }
}

describe.each(['express', 'fastify'] as const)('a retried request whose failed first attempt committed a record() row (%s)', (platform) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = `retried_record_${platform}`;
  const rowsOf = (requestId: string) =>
    db.query<{ action: string; outcome: string; status: number | null }>(
      `SELECT action, outcome, (metadata->>'statusCode')::int AS status FROM audit_log WHERE request_id = $1 ORDER BY occurred_at, id`,
      [requestId],
      database,
    );

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

  it('records the last attempt, which committed and answered 201', async () => {
    const tag = `${platform}-retried`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', `${tag}-request`).send({ tag }).expect(201);
    const committed = await db.query<{ attempt: number }>('SELECT attempt FROM orders WHERE tag = $1 ORDER BY attempt', [tag], database);
    expect(committed.map((row) => row.attempt)).toEqual([1, 2]);
    // A later request's row, then nothing pending: every row of this one is written (batches in flight may commit out of order).
    const later = `${platform}-later`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    await nothingPending(app);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([{ action: 'orders.place', outcome: 'success', status: 201 }]);
  });
});
