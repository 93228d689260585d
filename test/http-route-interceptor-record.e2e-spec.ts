// A request whose route binds an interceptor of its own keeps its row beside a committed record() row.
// Interceptors bound with `@UseInterceptors()` on a controller or handler run inside the audit
// interceptor; one that runs the handler again (rxjs `retry()`) does so without the audit
// interceptor seeing it, so a committed `record()` row may be an earlier run's. On such a route a
// `record()` row does not stand in for the request's row: a handler whose first run committed a
// `record()` row and failed, retried by `RetryOnceInterceptor` on the route into a run that
// committed without `record()` and answered 201, leaves both the `record()` row and the request's
// row with that 201; a route with an interceptor that runs the handler once leaves both rows too
// (the duplicate is visible, a lost row would not be); a route without one keeps the `record()`
// row alone.
import {
  Body,
  type CallHandler,
  Controller,
  type ExecutionContext,
  type INestApplication,
  Injectable,
  Module,
  type NestInterceptor,
  Post,
  ServiceUnavailableException,
  UseInterceptors,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { type Observable } from 'rxjs';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { eventually, nothingPending } from './support/app';
import { TestPostgres } from './support/postgres';
import { createOrdersDatabase, RetryOnceInterceptor, startAuditApp } from './support/tx-app';

const runs = new Map<string, number>();

/** Commits an order; the first run of each tag also commits its record() row, then fails. */
abstract class PlacesOrders {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  protected async placeOnce(body: { tag: string }): Promise<{ id: string }> {
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

@Controller('orders')
class OrdersController extends PlacesOrders {
  @Post()
  @UseInterceptors(RetryOnceInterceptor)
  place(@Body() body: { tag: string }): Promise<{ id: string }> {
    return this.placeOnce(body);
  }
}

@Controller('retried')
class RetriedController extends PlacesOrders {
  @Post()
  place(@Body() body: { tag: string }): Promise<{ id: string }> {
    return this.placeOnce(body);
  }
}

/** A retry bound globally in a module imported after `AuditModule`: it runs inside the audit interceptor. */
@Module({ providers: [{ provide: APP_INTERCEPTOR, useClass: RetryOnceInterceptor }] })
class InnerRetryModule {}

/** Runs the handler once, as most route interceptors do (serializers, file uploads). */
@Injectable()
class PassThroughInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

@Controller('once')
class OnceController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  private async place(tag: string): Promise<{ id: string }> {
    return this.db.transaction(async (manager) => {
      const [row] = (await manager.query('INSERT INTO orders (tag, attempt) VALUES ($1, 1) RETURNING id::text AS id', [tag])) as {
        id: string;
      }[];
      await this.audit.record({ action: 'order_placed', entityType: 'Order', entityId: row.id, requestId: tag }, { manager });
      return { id: row.id };
    });
  }

  @Post('intercepted')
  @UseInterceptors(PassThroughInterceptor)
  intercepted(@Body() body: { tag: string }): Promise<{ id: string }> {
    return this.place(body.tag);
  }

  @Post('plain')
  plain(@Body() body: { tag: string }): Promise<{ id: string }> {
    return this.place(body.tag);
  }
}

describe('a request whose route binds an interceptor of its own, and a record() row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let innerRetryApp: INestApplication<Server>;
  const database = 'route_interceptor_record';
  const rowsOf = (requestId: string) =>
    db.query<{ action: string; outcome: string; status: number | null }>(
      `SELECT action, outcome, (metadata->>'statusCode')::int AS status FROM audit_log WHERE request_id = $1 ORDER BY occurred_at, id`,
      [requestId],
      database,
    );

  beforeAll(async () => {
    db = await TestPostgres.start();
    await createOrdersDatabase(db, database);
    app = await startAuditApp(db, { database, controllers: [OrdersController, OnceController] });
    innerRetryApp = await startAuditApp(db, { database, controllers: [RetriedController], imports: [InnerRetryModule] });
  }, 60_000);

  afterAll(async () => {
    await innerRetryApp?.close();
    await app?.close();
    await db?.stop();
  });

  it('records the run that committed and answered 201', async () => {
    const tag = 'inner-retried';
    await request(app.getHttpServer()).post('/orders').set('x-request-id', `${tag}-request`).send({ tag }).expect(201);
    const committed = await db.query<{ attempt: number }>('SELECT attempt FROM orders WHERE tag = $1 ORDER BY attempt', [tag], database);
    expect(committed.map((row) => row.attempt)).toEqual([1, 2]);
    // A later request's row, then nothing pending: every row of this one is written (batches in flight may commit out of order).
    const later = 'inner-later';
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    await nothingPending(app);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([{ action: 'orders.place', outcome: 'success', status: 201 }]);
  });

  it('records the run that answered 201 when the retry is a global interceptor registered after the audit module', async () => {
    const tag = 'global-inner-retried';
    await request(innerRetryApp.getHttpServer()).post('/retried').set('x-request-id', `${tag}-request`).send({ tag }).expect(201);
    const committed = await db.query<{ attempt: number }>('SELECT attempt FROM orders WHERE tag = $1 ORDER BY attempt', [tag], database);
    expect(committed.map((row) => row.attempt)).toEqual([1, 2]);
    const later = 'global-inner-later';
    await request(innerRetryApp.getHttpServer()).post('/retried').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([{ action: 'retried.place', outcome: 'success', status: 201 }]);
  });

  it('keeps the request its row beside a record() row on a route whose interceptor runs the handler once', async () => {
    const tag = 'once-intercepted';
    await request(app.getHttpServer()).post('/once/intercepted').set('x-request-id', `${tag}-request`).send({ tag }).expect(201);
    const later = 'once-later';
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([{ action: 'once.intercepted', outcome: 'success', status: 201 }]);
  });

  it('writes the record() row alone on a route without interceptors of its own', async () => {
    const tag = 'once-plain';
    await request(app.getHttpServer()).post('/once/plain').set('x-request-id', `${tag}-request`).send({ tag }).expect(201);
    const later = 'plain-later';
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([]);
  });
});
