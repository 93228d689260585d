import {
  Body,
  type CallHandler,
  type CanActivate,
  Controller,
  type ExecutionContext,
  ForbiddenException,
  type INestApplication,
  Injectable,
  InternalServerErrorException,
  type NestInterceptor,
  Post,
} from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import { once } from 'node:events';
import { type Server } from 'node:http';
import { concatMap, from, type Observable } from 'rxjs';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { eventually, postAndHold, nothingPending } from './support/app';
import { TestPostgres } from './support/postgres';
import { startAuditApp } from './support/tx-app';

// docs/GUIDE.md, "Every mutation is audited, once": exactly one row per request, with the status
// the client got, made once every interceptor and exception filter has run; a committed record()
// row is the request's row. That holds for a client that goes away while a guard after the audit
// gate is still deciding (an auth guard awaiting a slow lookup): its connection closing is not the
// end of the request. The row waits for the pipeline to end the response: no second row beside
// the handler's committed record() row, a failure for a handler that fails and for a request the
// guard refuses, each with `reason: "client_closed"`. The same holds for an interceptor outside
// the audit interceptor that does slow work before it hands the request on.

/** Resolves when the slow guard or interceptor has a request (by its x-request-id) and waits for its client to leave. */
const inSlowPart = new Map<string, () => void>();
const slowPartReached = (tag: string) => new Promise<void>((resolve) => inSlowPart.set(tag, resolve));

/**
 * What the slow part (`x-slow: guard | interceptor`) does when it is `where`: decides only once
 * its client has gone (`x-verdict: allow | deny`).
 */
async function decideSlowly(context: ExecutionContext, where: 'guard' | 'interceptor'): Promise<void> {
  const http = context.switchToHttp();
  const request = http.getRequest<{ headers: Record<string, string | undefined> }>();
  if ((request.headers['x-slow'] ?? 'guard') !== where) return;
  const response = http.getResponse<{ raw?: NodeJS.EventEmitter } & NodeJS.EventEmitter>();
  const closed = once(response.raw ?? response, 'close');
  inSlowPart.get(request.headers['x-request-id'] ?? '')?.();
  await closed;
  if (request.headers['x-verdict'] === 'deny') throw new ForbiddenException('not yours');
}

/** A global guard that decides slowly, as an auth guard awaiting a slow lookup. */
@Injectable()
class SlowGuard implements CanActivate {
  async canActivate(context: ExecutionContext): Promise<boolean> {
    await decideSlowly(context, 'guard');
    return true;
  }
}

/** An interceptor outside the audit interceptor (APP_INTERCEPTOR in the root module) that does slow work before the handler. */
@Injectable()
class SlowInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return from(decideSlowly(context, 'interceptor')).pipe(concatMap(() => next.handle()));
  }
}

@Controller('widgets')
class WidgetsController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async make(@Body() body: { tag: string; fail?: boolean }): Promise<{ id: string }> {
    if (body.fail) throw new InternalServerErrorException('the widget press jammed');
    return this.db.transaction(async (manager) => {
      const [{ id }] = (await manager.query('INSERT INTO widget (tag) VALUES ($1) RETURNING id::text AS id', [body.tag])) as {
        id: string;
      }[];
      await this.audit.record({ action: 'widget_made', entityType: 'Widget', entityId: id, requestId: body.tag }, { manager });
      return { id };
    });
  }
}

interface Row {
  action: string;
  outcome: string;
  status: number | null;
  reason: string | null;
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
  ['async', 'fastify'],
  ['sync', 'express'],
] as const)('%s mode (%s), a client that leaves while a later guard decides', (mode, platform) => {
  let app: INestApplication<Server>;
  const database = `guard_client_left_${mode}_${platform}`;

  const rowsOf = (requestId: string) =>
    db.query<Row>(
      `SELECT action, outcome, (metadata->>'statusCode')::int AS status, metadata->>'reason' AS reason FROM audit_log WHERE request_id = $1 ORDER BY occurred_at, id`,
      [requestId],
      database,
    );
  const widgets = async (tag: string) => (await db.query('SELECT 1 FROM widget WHERE tag = $1', [tag], database)).length;

  /** POST /widgets, its connection destroyed once the slow guard (or interceptor) has the request. */
  async function sendAndLeave(
    requestId: string,
    verdict: 'allow' | 'deny',
    body: { tag: string; fail?: boolean },
    slow: 'guard' | 'interceptor' = 'guard',
  ): Promise<void> {
    const headers = { 'x-request-id': requestId, 'x-verdict': verdict, 'x-slow': slow };
    const client = await postAndHold(app, '/widgets', body, headers, slowPartReached(requestId));
    client.destroy();
  }

  /** Waits until a request sent now has its row and nothing is pending: every earlier row is in (batches in flight may commit out of order). */
  async function afterLaterRequest(): Promise<void> {
    const later = `${platform}-later-${Date.now()}`;
    await sendAndLeave(later, 'deny', { tag: later });
    await eventually(async () => (await rowsOf(later)).length > 0);
    await nothingPending(app);
  }

  beforeAll(async () => {
    await db.createDatabase(database);
    await db.query('CREATE TABLE widget (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tag text NOT NULL)', [], database);
    app = await startAuditApp(db, {
      database,
      platform,
      audit: { mode },
      controllers: [WidgetsController],
      providers: [
        { provide: APP_GUARD, useClass: SlowGuard },
        { provide: APP_INTERCEPTOR, useClass: SlowInterceptor },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
  });

  it('writes no second row beside the record() row the handler committed after its client left', async () => {
    const tag = `${platform}-record`;
    await sendAndLeave(`${tag}-request`, 'allow', { tag });
    await eventually(async () => (await widgets(tag)) === 1);
    await eventually(async () => (await rowsOf(tag)).length > 0);
    await afterLaterRequest();
    expect(await rowsOf(tag)).toEqual([{ action: 'widget_made', outcome: 'success', status: null, reason: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([]);
  });

  it('records as a failure a request whose handler failed after its client left', async () => {
    const tag = `${platform}-fail`;
    await sendAndLeave(`${tag}-request`, 'allow', { tag, fail: true });
    await eventually(async () => (await rowsOf(`${tag}-request`)).length > 0);
    await afterLaterRequest();
    const rows = await rowsOf(`${tag}-request`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual(expect.objectContaining({ action: 'widgets.make', outcome: 'failure', status: 500, reason: 'client_closed' }));
  });

  it('records as a failure a request the guard refused after its client left', async () => {
    const tag = `${platform}-deny`;
    await sendAndLeave(`${tag}-request`, 'deny', { tag });
    await eventually(async () => (await rowsOf(`${tag}-request`)).length > 0);
    await afterLaterRequest();
    expect(await widgets(tag)).toBe(0);
    const rows = await rowsOf(`${tag}-request`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual(expect.objectContaining({ action: 'widgets.make', outcome: 'failure', status: 403, reason: 'client_closed' }));
  });

  it('writes no second row beside the record() row of a request whose client left while an outer interceptor worked', async () => {
    const tag = `${platform}-outer-record`;
    await sendAndLeave(`${tag}-request`, 'allow', { tag }, 'interceptor');
    await eventually(async () => (await widgets(tag)) === 1);
    await eventually(async () => (await rowsOf(tag)).length > 0);
    await afterLaterRequest();
    expect(await rowsOf(tag)).toEqual([{ action: 'widget_made', outcome: 'success', status: null, reason: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([]);
  });

  it('records as a failure a request an outer interceptor refused after its client left', async () => {
    const tag = `${platform}-outer-deny`;
    await sendAndLeave(`${tag}-request`, 'deny', { tag }, 'interceptor');
    await eventually(async () => (await rowsOf(`${tag}-request`)).length > 0);
    await afterLaterRequest();
    expect(await widgets(tag)).toBe(0);
    expect(await rowsOf(`${tag}-request`)).toEqual([{ action: 'widgets.make', outcome: 'failure', status: 403, reason: 'client_closed' }]);
  });
});
