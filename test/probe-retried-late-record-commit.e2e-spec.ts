// Promise (src/audit/audit.interceptor.ts, docs/GUIDE.md "Order of interceptors", CHANGELOG: "of a
// retried request the last attempt counts: a record() row an earlier attempt committed stands for
// that attempt only, and no longer silences the row of the attempt the client was answered for").
// Break: an outer interceptor gives up on an attempt (rxjs `timeout()`) and retries it. The first
// attempt's handler goes on running (a promise is not cancelled) and commits its `record()` row
// while the second attempt runs. The attempts share the request's audit context, so that commit
// marks the context as recorded after the second attempt's begin() cleared the mark: the second
// attempt, which wrote no `record()` row and answered 201, gets no row.
// Observed: the request has no row of its own (only the first attempt's order_placed row), on
// Express and Fastify, in sync and async mode.
// Severity: high (a request the client was answered for, a mutation committed, and no audit row
// for it; the one row there says another attempt's story).
// Fix guess: give each attempt its own mark (an attempt counter, or a fresh scope per begin()),
// and let markRecorded() mark only the attempt whose context wrote the row.
import { Body, Controller, type INestApplication, Injectable, type NestInterceptor, Post, type CallHandler } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { retry, timeout, type Observable } from 'rxjs';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { eventually } from './support/app';
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
    // A later request's row is written after any row of this one (one writer, in order).
    const later = `${platform}-${mode}-later`;
    await request(app.getHttpServer()).post('/orders').set('x-request-id', later).send({ tag: later }).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    expect(await rowsOf(tag)).toEqual([{ action: 'order_placed', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([{ action: 'orders.place', outcome: 'success', status: 201 }]);
  });
});
