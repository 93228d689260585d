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
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { type Observable, retry } from 'rxjs';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

// PROBE (attacker A11): an interceptor bound with APP_INTERCEPTOR in the root module sits outside
// the audit interceptor (docs/GUIDE.md, "Order of interceptors"). A common one retries a request
// whose handler failed with a transient error (a serialization failure, a deadlock): rxjs `retry`
// subscribes again, so the handler runs again, and the second attempt commits its change and
// answers 201. The audit row keeps the FIRST attempt's observation (AuditedRequest.observe: "the
// first observation counts"): the request that committed and answered 201 is recorded as a
// failure, and a record() row committed by the second attempt gets a second, failure, row beside
// it. Promise (docs/GUIDE.md, "Every mutation is audited, once"): "exactly one row per request,
// with the status the client got ... The row is made once every interceptor and exception filter
// has run, so it has the status the client got and the entity changes that committed"; and
// (`record()`): "once that transaction has committed, the interceptor writes no second row for
// that request".

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

/** Retries a failed request once: bound with APP_INTERCEPTOR in the root module, outside the audit interceptor. */
@Injectable()
class RetryOnceInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(retry(1));
  }
}

interface Row {
  action: string;
  outcome: string;
  status: number | null;
}

describe.each(['express', 'fastify'] as const)('PROBE: a request retried by an outer interceptor (%s)', (platform) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = `probe_retry_${platform}`;

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
    await db.createDatabase(database);
    await db.query(
      'CREATE TABLE orders (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tag text NOT NULL, attempt int NOT NULL)',
      [],
      database,
    );
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(database),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({}),
      ],
      controllers: [OrdersController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: RetryOnceInterceptor }],
    })
    class ProbeModule {}
    const moduleRef = await Test.createTestingModule({ imports: [ProbeModule] }).compile();
    app =
      platform === 'fastify'
        ? (moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), {
            logger: false,
          }) as unknown as INestApplication<Server>)
        : moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
    await partitionsChecked(app);
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
    // A later request's row is written after any row of this one (one writer, in order).
    const later = `${platform}-later`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([]);
  });
});
