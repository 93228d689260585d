import { Body, Controller, type INestApplication, Module, Post, Res, SetMetadata, UseGuards } from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { EMPTY, type Observable, of } from 'rxjs';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Audited, AuditLog, AuditModule, CreateAuditLog1732700000000 } from '../src/audit';
import { eventually } from './support/app';
import { DenyHeaderGuard, Gate, settledRowsOf, TIMEOUT_MS, TimeoutInterceptor } from './support/capture-app';
import { TestPostgres } from './support/postgres';

const gates = new Map<string, Gate>();

/** The part of Express's response a `@Res()` handler uses here. */
interface Response {
  status(code: number): { json(body: unknown): void };
}

@Controller('things')
class ThingsController {
  constructor(private readonly dataSource: DataSource) {}

  @Post('slow')
  @SetMetadata(TIMEOUT_MS, 100)
  @Audited('thing_made_slowly')
  async slow(@Body() body: { key: string }): Promise<{ id: string }> {
    await gates.get(body.key)?.passed;
    await this.dataSource.query('INSERT INTO thing (key) VALUES ($1)', [body.key]);
    return { id: body.key };
  }

  @Post('three')
  @Audited('thing_streamed')
  three(): Observable<{ id: string }> {
    return of({ id: 'a' }, { id: 'b' }, { id: 'c' });
  }

  @Post('none')
  @Audited('thing_streamed_empty')
  none(): Observable<never> {
    return EMPTY;
  }

  @Post('denied')
  @UseGuards({ canActivate: () => false })
  @Audited('thing_denied')
  denied(): { id: string } {
    return { id: 'never' };
  }

  @Post('manual')
  @Audited('thing_sent_by_hand')
  manual(@Body() body: { status: number }, @Res() res: Response): void {
    // Sent after the handler has returned, as a callback-style handler would.
    setImmediate(() => res.status(body.status).json({ id: 'by-hand' }));
  }
}

// A real app per mode, real HTTP and a real PostgreSQL: each mutating request leaves exactly one
// audit row, with the status code the client received.
describe.each(['async', 'sync'] as const)('what the interceptor captures (%s mode)', (mode) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let n = 0;
  const id = (name: string) => `${mode}-${name}-${++n}`;
  const post = (path: string, requestId: string) => request(app.getHttpServer()).post(path).set('x-request-id', requestId);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.query('CREATE TABLE thing (key text PRIMARY KEY)');
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [CreateAuditLog1732700000000],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ mode }),
      ],
      controllers: [ThingsController],
      providers: [
        { provide: APP_INTERCEPTOR, useClass: TimeoutInterceptor },
        { provide: APP_GUARD, useClass: DenyHeaderGuard },
      ],
    })
    class CaptureAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [CaptureAppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('records a request cancelled by an outer timeout interceptor once, as a cancelled failure, though the handler commits', async () => {
    const requestId = id('slow');
    const gate = new Gate();
    gates.set(requestId, gate);
    await post('/things/slow', requestId).send({ key: requestId }).expect(408);
    gate.open();
    await eventually(() => db.query('SELECT 1 FROM thing WHERE key = $1', [requestId]).then((r) => r.length === 1));
    expect(await settledRowsOf(db, requestId)).toEqual([
      {
        action: 'thing_made_slowly',
        outcome: 'failure',
        metadata: expect.objectContaining({ statusCode: 408, reason: 'cancelled' }) as unknown,
      },
    ]);
  });

  it('records a handler whose Observable emits three values once, with the last value', async () => {
    const requestId = id('three');
    const response = await post('/things/three', requestId).expect(201);
    expect(response.body).toEqual({ id: 'c' });
    expect(await settledRowsOf(db, requestId)).toEqual([
      { action: 'thing_streamed', outcome: 'success', metadata: expect.objectContaining({ statusCode: 201 }) as unknown },
    ]);
  });

  it('records a handler whose Observable completes empty once, with the status the client got', async () => {
    const requestId = id('none');
    const response = await post('/things/none', requestId);
    expect(await settledRowsOf(db, requestId)).toEqual([
      {
        action: 'thing_streamed_empty',
        outcome: response.status < 400 ? 'success' : 'failure',
        metadata: expect.objectContaining({ statusCode: response.status }) as unknown,
      },
    ]);
  });

  it('records a request refused by a guard on the handler, with 403', async () => {
    const requestId = id('denied');
    await post('/things/denied', requestId).expect(403);
    expect(await settledRowsOf(db, requestId)).toEqual([
      { action: 'thing_denied', outcome: 'failure', metadata: expect.objectContaining({ statusCode: 403 }) as unknown },
    ]);
  });

  it('records a request refused by a global guard of the root module, under the action of the handler it was for', async () => {
    const requestId = id('deny-header');
    await post('/things/three', requestId).set('x-deny', '1').expect(403);
    expect(await settledRowsOf(db, requestId)).toEqual([
      {
        action: 'thing_streamed',
        outcome: 'failure',
        metadata: expect.objectContaining({ statusCode: 403, route: '/things/three' }) as unknown,
      },
    ]);
  });

  it.each([
    [202, 'success'],
    [409, 'failure'],
  ])('records a @Res() handler with the status it sent (%i)', async (status, outcome) => {
    const requestId = id(`manual-${status}`);
    await post('/things/manual', requestId).send({ status }).expect(status);
    expect(await settledRowsOf(db, requestId)).toEqual([
      { action: 'thing_sent_by_hand', outcome, metadata: expect.objectContaining({ statusCode: status }) as unknown },
    ]);
  });
});
