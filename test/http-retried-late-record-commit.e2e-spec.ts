// docs/GUIDE.md, "Order of interceptors": of a request an outer interceptor retries, the last
// attempt counts, also when an attempt given up on goes on. An outer `timeout(500), retry(1)`
// gives up on the first attempt while it is still in its transaction; its handler goes on (a
// promise is not cancelled) and commits its `record()` row while the second attempt runs. That
// row stands for the first attempt only: the second attempt, which commits without `record()` and
// answers 201, gets the request's own row, with that status (Express and Fastify, sync and async
// mode).
import { Body, Controller, type INestApplication, Injectable, type NestInterceptor, Post, type CallHandler } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { retry, timeout, type Observable } from 'rxjs';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { eventually, nothingPending } from './support/app';
import { TestPostgres } from './support/postgres';
import { createOrdersDatabase, startAuditApp } from './support/tx-app';

/** Gives an attempt 500 ms, then retries it once. */
@Injectable()
class TimeoutRetryInterceptor implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(timeout(500), retry(1));
  }
}

interface Attempts {
  count: number;
  /** Lets the first attempt commit (the second attempt calls it). */
  release: () => void;
  released: Promise<void>;
  /** Settles once the first attempt's transaction (with its record() row) has committed. */
  firstCommitted: Promise<void>;
  committed: () => void;
}
const byTag = new Map<string, Attempts>();
function attemptsOf(tag: string): Attempts {
  let attempts = byTag.get(tag);
  if (!attempts) {
    let release = () => undefined as void;
    let committed = () => undefined as void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const firstCommitted = new Promise<void>((resolve) => (committed = resolve));
    attempts = { count: 0, release, released, firstCommitted, committed };
    byTag.set(tag, attempts);
  }
  return attempts;
}

@Controller('orders')
class OrdersController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async place(@Body() body: { tag: string }): Promise<{ id: string }> {
    const attempts = attemptsOf(body.tag);
    const attempt = (attempts.count += 1);
    if (attempt === 1) {
      // Slow: still in its transaction when the outer interceptor gives up on it.
      const id = await this.db.transaction(async (manager) => {
        const [row] = (await manager.query('INSERT INTO orders (tag, attempt) VALUES ($1, 1) RETURNING id::text AS id', [body.tag])) as {
          id: string;
        }[];
        await this.audit.record({ action: 'order_placed', entityType: 'Order', entityId: row.id, requestId: body.tag }, { manager });
        await attempts.released;
        return row.id;
      });
      attempts.committed();
      return { id };
    }
    // The retry: lets the first attempt finish, writes its own order without record(), answers 201.
    attempts.release();
    await attempts.firstCommitted;
    const [row] = (await this.db.query('INSERT INTO orders (tag, attempt) VALUES ($1, $2) RETURNING id::text AS id', [
      body.tag,
      attempt,
    ])) as { id: string }[];
    return { id: row.id };
  }
}

describe.each([
  ['express', 'sync'],
  ['fastify', 'sync'],
  ['express', 'async'],
  ['fastify', 'async'],
] as const)('a retried request whose abandoned first attempt commits record() during the retry (%s, %s mode)', (platform, mode) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = `late_record_${platform}_${mode}`;
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
      providers: [{ provide: APP_INTERCEPTOR, useClass: TimeoutRetryInterceptor }],
      audit: { mode },
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('records the attempt the client was answered for (201), which wrote no record() row', async () => {
    const tag = `${platform}-${mode}-late`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', `${tag}-request`).send({ tag }).expect(201);
    const committed = await db.query<{ attempt: number }>('SELECT attempt FROM orders WHERE tag = $1 ORDER BY attempt', [tag], database);
    expect(committed.map((row) => row.attempt)).toEqual([1, 2]);
    // A later request's row, then nothing pending: every row of this one is written (batches in flight may commit out of order).
    const later = `${platform}-${mode}-later`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    await nothingPending(app);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([{ action: 'orders.place', outcome: 'success', status: 201 }]);
  });
});
