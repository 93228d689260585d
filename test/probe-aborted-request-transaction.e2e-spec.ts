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
  Req,
  Res,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { once } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { catchError, concatMap, finalize, from, type Observable } from 'rxjs';
import { DataSource, type EntityManager } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';
import { Invoice, numbersOn, txRows } from './support/tx-app';

// PROBE (attacker A11): docs/GUIDE.md, "A transaction per request": "An interceptor that opens a
// transaction for the request and commits it after the handler may sit anywhere, outside the audit
// interceptor too (bound with APP_INTERCEPTOR in your root module): the row is made after its
// COMMIT, in both modes, so it carries what committed, takes a record() row written in that
// transaction as the request's row once it committed". And "Every mutation is audited, once ...
// exactly one row per request".
// When the client goes away while the handler runs (a client timeout, a closed tab), the response
// closes first; AuditedRequest then makes the row as soon as the audit interceptor sees the handler
// end, BEFORE the outer interceptor's COMMIT: the record() row that then commits is a second row for
// the same mutation, and without record() the row carries none of the changes that committed.

/** Resolves when the handler of a request (by its number) has done its writes and waits for its client to leave. */
const started = new Map<string, () => void>();
const handlerStarted = (number: string) => new Promise<void>((resolve) => started.set(number, resolve));

interface TransactionalRequest {
  transaction: EntityManager;
}

/** Opens a transaction per request and commits it after the handler, as docs/GUIDE.md shows (outside the audit interceptor). */
@Injectable()
class RequestTransactionInterceptor implements NestInterceptor {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const runner = this.db.createQueryRunner();
    return from(runner.startTransaction()).pipe(
      concatMap(() => {
        context.switchToHttp().getRequest<TransactionalRequest>().transaction = runner.manager;
        return next.handle();
      }),
      concatMap(async (value) => {
        await runner.commitTransaction();
        return value;
      }),
      catchError(async (error: unknown) => {
        if (runner.isTransactionActive) await runner.rollbackTransaction();
        throw error;
      }),
      finalize(() => void runner.release()),
    );
  }
}

@Controller('booked')
class SlowBookedController {
  constructor(private readonly audit: AuditService) {}

  /** Writes through the request's transaction, then (as a slow handler would) ends only after its client has gone. */
  @Post()
  async book(
    @Req() request: TransactionalRequest,
    @Res({ passthrough: true }) response: { raw?: NodeJS.EventEmitter } & NodeJS.EventEmitter,
    @Body() body: { number: string; record?: boolean; twice?: boolean },
  ): Promise<Invoice> {
    const closed = once(response.raw ?? response, 'close');
    const manager = request.transaction;
    const invoice = await manager.save(manager.create(Invoice, { number: body.number }));
    // A duplicate number fails only at COMMIT (a deferred constraint).
    if (body.twice) await manager.save(manager.create(Invoice, { number: body.number }));
    if (body.record) {
      await this.audit.record(
        { action: 'invoice_booked', entityType: 'Invoice', entityId: invoice.id, requestId: body.number },
        { manager },
      );
    }
    started.get(body.number)?.();
    await closed;
    return invoice;
  }
}

describe.each([
  ['async', 'express'],
  ['sync', 'express'],
  ['async', 'fastify'],
] as const)('PROBE: %s mode (%s), a client that leaves while a transaction-per-request handler runs', (mode, platform) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const database = `probe_abort_${mode}_${platform}`;

  /** Sends a POST /booked and destroys its connection once the handler has written (its transaction still open). */
  async function bookAndLeave(number: string, body: { record?: boolean; twice?: boolean }): Promise<void> {
    const { port } = app.getHttpServer().address() as AddressInfo;
    const inHandler = handlerStarted(number);
    const payload = JSON.stringify({ number, ...body });
    const client = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/booked',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-request-id': `${number}-request` },
    });
    client.on('error', () => undefined);
    client.end(payload);
    await inHandler;
    client.destroy();
  }

  const committed = async (number: string) =>
    (await db.query<{ number: string }>('SELECT number FROM invoice WHERE number = $1', [number], database)).length;

  /** Waits until the writer has written everything logged before a later request's row. */
  async function afterLaterRequest(): Promise<void> {
    const later = `${mode}-${platform}-later-${Date.now()}`;
    await bookAndLeave(later, {});
    await eventually(async () => (await committed(later)) === 1);
    await eventually(async () => (await txRows(db, database, `${later}-request`)).length > 0);
  }

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query(
      `CREATE TABLE invoice (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), number text NOT NULL,
         CONSTRAINT invoice_number_unique UNIQUE (number) DEFERRABLE INITIALLY DEFERRED)`,
      [],
      database,
    );
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(database),
          entities: [Invoice, AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ mode }),
      ],
      controllers: [SlowBookedController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: RequestTransactionInterceptor }],
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

  it('writes no second row beside the record() row its transaction committed after the client left', async () => {
    const number = `${mode}-${platform}-rec`;
    await bookAndLeave(number, { record: true });
    await eventually(async () => (await committed(number)) === 1);
    await eventually(async () => (await txRows(db, database, number)).length > 0);
    await afterLaterRequest();
    expect(await txRows(db, database, number)).toEqual([expect.objectContaining({ action: 'invoice_booked', outcome: 'success' })]);
    expect(await txRows(db, database, `${number}-request`)).toEqual([]);
  });

  it('puts the change its transaction committed after the client left on the request’s row', async () => {
    const number = `${mode}-${platform}-plain`;
    await bookAndLeave(number, {});
    await eventually(async () => (await committed(number)) === 1);
    await afterLaterRequest();
    const rows = await txRows(db, database, `${number}-request`);
    expect(rows).toHaveLength(1);
    expect(numbersOn(rows[0])).toEqual([number]);
  });

  it('does not record as a success a request whose COMMIT failed after the client left', async () => {
    const number = `${mode}-${platform}-dup`;
    await bookAndLeave(number, { twice: true });
    await eventually(async () => (await txRows(db, database, `${number}-request`)).length > 0);
    await afterLaterRequest();
    expect(await committed(number)).toBe(0);
    const rows = await txRows(db, database, `${number}-request`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual(expect.objectContaining({ outcome: 'failure' }));
  });
});
