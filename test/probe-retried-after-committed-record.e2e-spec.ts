// PROMISE (docs/GUIDE.md, "Order of interceptors"): "An interceptor outside that retries the
// request (rxjs `retry()`) runs the handler again: the last attempt counts, its outcome and its
// `record()` row"; "Every mutation is audited, once … exactly one row per request, with the
// status code the client got".
//
// BREAK: the first attempt commits its transaction with a record() row, then fails after the
// commit (a step after it, such as a notification, throws a transient error); the outer
// interceptor retries; the second attempt commits a new order WITHOUT a record() row and answers
// 201. The first attempt's committed record() row marked the request's context as recorded, and
// the mark outlives the retry: the last attempt, the one the client was answered for, leaves no
// row; nothing in the trail says the request succeeded with 201 nor records its second order.
//
// OBSERVED (Express and Fastify, async mode): two orders committed ([1, 2]); the request's own
// rows: [] (expected one success row with status 201); only attempt 1's `order_placed` row exists.
//
// SEVERITY: medium (a committed mutation, the one the client was told of, without a row of its own).
//
// FIX GUESS: keep a committed record() row per attempt: when the handler is subscribed again,
// a record() of an earlier attempt stands for that attempt only; the request's row is decided by
// the last attempt (its record() row, else the interceptor's own).
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

@Injectable()
class RetryOnceInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(retry(1));
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
    class RetriedRecordModule {}
    const moduleRef = await Test.createTestingModule({ imports: [RetriedRecordModule] }).compile();
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

  it('records the last attempt, which committed and answered 201', async () => {
    const tag = `${platform}-retried`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', `${tag}-request`).send({ tag }).expect(201);
    const committed = await db.query<{ attempt: number }>('SELECT attempt FROM orders WHERE tag = $1 ORDER BY attempt', [tag], database);
    expect(committed.map((row) => row.attempt)).toEqual([1, 2]);
    // A later request's row is written after any row of this one (one writer, in order).
    const later = `${platform}-later`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([{ action: 'orders.place', outcome: 'success', status: 201 }]);
  });
});
