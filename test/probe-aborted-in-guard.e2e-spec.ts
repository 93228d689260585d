import {
  Body,
  type CanActivate,
  Controller,
  type ExecutionContext,
  ForbiddenException,
  type INestApplication,
  Injectable,
  InternalServerErrorException,
  Module,
  Post,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { once } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

// PROBE (attacker A11): docs/GUIDE.md, "Every mutation is audited, once": "exactly one row per
// request, with the status the client got: on success, on failure, when a guard refuses it ... The
// row is made once every interceptor and exception filter has run, so it has the status the client
// got and the entity changes that committed"; and (`record()`) "once that transaction has
// committed, the interceptor writes no second row for that request".
// The audit gate guard tracks the request before every other guard. When the client goes away
// while a later guard is still deciding (an auth guard awaiting a slow lookup, a rate limiter), the
// response closes before the audit interceptor was reached: AuditedRequest is not "handling" yet, so
// it records at once: outcome success, status 200, before the handler has run or been refused.
// The guard then lets it through and the handler commits a record() row: two rows; or the handler
// fails: recorded as a success; or the guard refuses it: recorded as a success.

/** Resolves when the slow guard has a request (by its x-request-id) and waits for its client to leave. */
const inGuard = new Map<string, () => void>();
const guardReached = (tag: string) => new Promise<void>((resolve) => inGuard.set(tag, resolve));

/** A global guard that decides slowly: here, only once its client has gone (`x-verdict: allow | deny`). */
@Injectable()
class SlowGuard implements CanActivate {
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<{ headers: Record<string, string | undefined> }>();
    const response = http.getResponse<{ raw?: NodeJS.EventEmitter } & NodeJS.EventEmitter>();
    const closed = once(response.raw ?? response, 'close');
    inGuard.get(request.headers['x-request-id'] ?? '')?.();
    await closed;
    if (request.headers['x-verdict'] === 'deny') throw new ForbiddenException('not yours');
    return true;
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
}

describe.each(['express', 'fastify'] as const)('PROBE: a client that leaves while a later guard decides (%s)', (platform) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = `probe_guard_abort_${platform}`;

  const rowsOf = (requestId: string) =>
    db.query<Row>(
      `SELECT action, outcome, (metadata->>'statusCode')::int AS status FROM audit_log WHERE request_id = $1 ORDER BY occurred_at, id`,
      [requestId],
      database,
    );
  const widgets = async (tag: string) => (await db.query('SELECT 1 FROM widget WHERE tag = $1', [tag], database)).length;

  /** POST /widgets, its connection destroyed once the slow guard has the request. */
  async function sendAndLeave(requestId: string, verdict: 'allow' | 'deny', body: { tag: string; fail?: boolean }): Promise<void> {
    const { port } = app.getHttpServer().address() as AddressInfo;
    const reached = guardReached(requestId);
    const payload = JSON.stringify(body);
    const client = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/widgets',
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        'x-request-id': requestId,
        'x-verdict': verdict,
      },
    });
    client.on('error', () => undefined);
    client.end(payload);
    await reached;
    client.destroy();
  }

  /** Waits until a request sent now has its row: the writer writes in order, so every earlier row is in. */
  async function afterLaterRequest(): Promise<void> {
    const later = `${platform}-later-${Date.now()}`;
    await sendAndLeave(later, 'deny', { tag: later });
    await eventually(async () => (await rowsOf(later)).length > 0);
  }

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query('CREATE TABLE widget (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tag text NOT NULL)', [], database);
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
      controllers: [WidgetsController],
      providers: [{ provide: APP_GUARD, useClass: SlowGuard }],
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

  it('writes no second row beside the record() row the handler committed after its client left', async () => {
    const tag = `${platform}-record`;
    await sendAndLeave(`${tag}-request`, 'allow', { tag });
    await eventually(async () => (await widgets(tag)) === 1);
    await eventually(async () => (await rowsOf(tag)).length > 0);
    await afterLaterRequest();
    expect(await rowsOf(tag)).toEqual([{ action: 'widget_made', outcome: 'success', status: null }]);
    expect(await rowsOf(`${tag}-request`)).toEqual([]);
  });

  it('records as a failure a request whose handler failed after its client left', async () => {
    const tag = `${platform}-fail`;
    await sendAndLeave(`${tag}-request`, 'allow', { tag, fail: true });
    await eventually(async () => (await rowsOf(`${tag}-request`)).length > 0);
    await afterLaterRequest();
    const rows = await rowsOf(`${tag}-request`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual(expect.objectContaining({ action: 'widgets.make', outcome: 'failure' }));
  });

  it('records as a failure a request the guard refused after its client left', async () => {
    const tag = `${platform}-deny`;
    await sendAndLeave(`${tag}-request`, 'deny', { tag });
    await eventually(async () => (await rowsOf(`${tag}-request`)).length > 0);
    await afterLaterRequest();
    expect(await widgets(tag)).toBe(0);
    const rows = await rowsOf(`${tag}-request`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual(expect.objectContaining({ action: 'widgets.make', outcome: 'failure' }));
  });
});
