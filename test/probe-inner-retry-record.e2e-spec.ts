// Promise (CHANGELOG Unreleased, Fixed; docs/GUIDE.md "Order of interceptors"): "A retried request
// whose first attempt committed a `record()` row lost the last attempt's row … A `record()` row now
// stands for its attempt only; the last attempt gets its row." The fix covers a retry bound outside
// the audit interceptor (`APP_INTERCEPTOR`). The same retry bound on the route
// (`@UseInterceptors(RetryOnceInterceptor)`, the usual place for a retry on a transient error) sits
// inside the audit interceptor: both runs of the handler share one attempt context.
// Break: the first run commits its order with a `record()` row and then fails (a step after the
// commit meets a transient error); the retry commits a second order without `record()` and answers
// 201. Observed: the first run's `record()` row silences the request's row, so the second order,
// committed and answered 201, has no row at all (the trail holds `order_placed` for order 1 only).
// Severity: medium (a committed mutation answered 201 leaves no row; a retry on the route is a
// common pattern). Fix guess: the record() mark should be reset at each subscription of the
// handler's observable as well (a run of the handler, not only an intercept() call), e.g. make
// each subscribe in AuditInterceptor begin a new attempt, or clear `recordedAtomically` when the
// handler's observable errors and is subscribed to again.
import { Body, Controller, type INestApplication, Post, ServiceUnavailableException, UseInterceptors } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { eventually } from './support/app';
import { TestPostgres } from './support/postgres';
import { createOrdersDatabase, RetryOnceInterceptor, startAuditApp } from './support/tx-app';

const runs = new Map<string, number>();

@Controller('orders')
class OrdersController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  @UseInterceptors(RetryOnceInterceptor)
  async place(@Body() body: { tag: string }): Promise<{ id: string }> {
    const attempt = (runs.get(body.tag) ?? 0) + 1;
    runs.set(body.tag, attempt);
    const id = await this.db.transaction(async (manager) => {
      const [row] = (await manager.query('INSERT INTO orders (tag, attempt) VALUES ($1, $2) RETURNING id::text AS id', [
        body.tag,
        attempt,
      ])) as { id: string }[];
      if (attempt === 1)
        await this.audit.record({ action: 'order_placed', entityType: 'Order', entityId: row.id, requestId: body.tag }, { manager });
      return row.id;
    });
    if (attempt === 1) throw new ServiceUnavailableException('notification service busy');
    return { id };
  }
}

describe('a request retried by an interceptor on its route, whose failed first run committed a record() row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = 'probe_inner_retry';
  const rowsOf = (requestId: string) =>
    db.query<{ action: string; outcome: string; status: number | null }>(
      `SELECT action, outcome, (metadata->>'statusCode')::int AS status FROM audit_log WHERE request_id = $1 ORDER BY occurred_at, id`,
      [requestId],
      database,
    );

  beforeAll(async () => {
    db = await TestPostgres.start();
    await createOrdersDatabase(db, database);
    app = await startAuditApp(db, { database, controllers: [OrdersController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('records the run that committed and answered 201', async () => {
    const tag = 'inner-retried';
    await request(app.getHttpServer()).post('/orders').set('x-request-id', `${tag}-request`).send({ tag }).expect(201);
    const committed = await db.query<{ attempt: number }>('SELECT attempt FROM orders WHERE tag = $1 ORDER BY attempt', [tag], database);
    expect(committed.map((row) => row.attempt)).toEqual([1, 2]);
    // A later request's row is written after any row of this one (one writer, in order).
    const later = 'inner-later';
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([{ action: 'orders.place', outcome: 'success', status: 201 }]);
  });
});
