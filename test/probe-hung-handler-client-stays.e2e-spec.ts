// PROMISE (README.md, failure table): "a client leaves before its response, or the handler never
// ends | the row waits for the response's end (real status, client_closed); past
// unfinishedAfterMs (60 s) it is a failure, unfinished". docs/GUIDE.md: "exactly one row per
// request"; docs/CONFIGURATION.md (unfinishedAfterMs): "… and so is one still waiting at shutdown".
//
// BREAK: the unfinished deadline starts only when the client leaves (UnfinishedRequests.wait is
// called from the client's close). A handler that never ends while its client stays connected (a
// proxy or load balancer holding the connection, a client without a timeout) is never recorded:
// not after unfinishedAfterMs, and not at shutdown either (giveUpAll() only knows requests whose
// client left), though its mutation committed.
//
// OBSERVED: unfinishedAfterMs 100; the handler commits its payment and hangs, the client stays:
// no row after 10 s (eventually() times out, rows: []). With the app shutting down (app.close()
// started, the client still connected), still no row after 10 s; the committed payment has no
// audit row at all; when the handler is then let go, during the app's close, its entry only gets
// an `audit.dropped` line (reason "shutdown", outcome success, status 201, durationMs ≈ 10066).
// (Once the client finally leaves, the deadline starts then.) docs/CONFIGURATION.md words the
// option for a client that went away; the README's failure table promises it for a handler that
// never ends: one of the two is wrong.
//
// SEVERITY: medium (a committed mutation without a row for as long as the connection lives, and
// lost entirely at a deploy: the orchestrator's SIGKILL ends the process that app.close() left
// waiting on the open connection).
//
// FIX GUESS: start the deadline when the request enters the interceptor (or the first guard), not
// when the client leaves; record every request not yet recorded in giveUpAll(), whatever its client.
import { Body, Controller, type INestApplication, Module, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { type ClientRequest, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

const hung: (() => void)[] = [];
const started = new Map<string, () => void>();

@Controller('transfers')
class TransfersController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async send(@Body() body: { tag: string }): Promise<{ ok: true }> {
    await this.db.query('INSERT INTO transfer (tag) VALUES ($1)', [body.tag]);
    started.get(body.tag)?.();
    // The external call that never answers.
    await new Promise<void>((resolve) => hung.push(resolve));
    return { ok: true };
  }
}

describe('a handler that never ends while its client stays connected', () => {
  let db: TestPostgres;
  const apps: INestApplication<Server>[] = [];
  const clients: ClientRequest[] = [];
  const database = 'hung_client_stays';
  const rowsOf = (tag: string) =>
    db.query<{ outcome: string; reason: string | null }>(
      `SELECT outcome, metadata->>'reason' AS reason FROM audit_log WHERE request_id = $1`,
      [tag],
      database,
    );

  async function startApp(): Promise<INestApplication<Server>> {
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(database),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ writeTimeoutMs: 1000, unfinishedAfterMs: 100 }),
      ],
      controllers: [TransfersController],
    })
    class HungModule {}
    const moduleRef = await Test.createTestingModule({ imports: [HungModule] }).compile();
    const nest = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await nest.listen(0, '127.0.0.1');
    await partitionsChecked(nest);
    apps.push(nest);
    return nest;
  }

  /** Sends a transfer whose handler hangs after committing; the client stays connected. */
  async function sendAndStay(on: INestApplication<Server>, tag: string): Promise<void> {
    const { port } = on.getHttpServer().address() as AddressInfo;
    const inHandler = new Promise<void>((resolve) => started.set(tag, resolve));
    const payload = JSON.stringify({ tag });
    const client = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/transfers',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-request-id': tag },
    });
    client.on('error', () => undefined);
    client.end(payload);
    clients.push(client);
    await inHandler;
  }

  const firstRows = (tag: string) =>
    eventually(
      async () => {
        const found = await rowsOf(tag);
        return found.length > 0 && found;
      },
      10_000,
      `a row for ${tag}`,
    ).catch(() => []);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query('CREATE TABLE transfer (tag text NOT NULL)', [], database);
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.destroy();
    for (const release of hung) release();
    await Promise.all(apps.map((app) => app.close()));
    await db?.stop();
  }, 30_000);

  it('records the committed transfer as unfinished past unfinishedAfterMs', async () => {
    const app = await startApp();
    await sendAndStay(app, 'stays-1');
    expect(await db.query('SELECT tag FROM transfer WHERE tag = $1', ['stays-1'], database)).toEqual([{ tag: 'stays-1' }]);
    expect(await firstRows('stays-1')).toEqual([{ outcome: 'failure', reason: 'unfinished' }]);
  }, 30_000);

  it('records it when the app shuts down', async () => {
    const app = await startApp();
    await sendAndStay(app, 'stays-2');
    const closing = app.close().catch(() => undefined);
    const rows = await firstRows('stays-2');
    for (const client of clients) client.destroy();
    for (const release of hung.splice(0)) release();
    await closing;
    expect(rows).toEqual([{ outcome: 'failure', reason: 'unfinished' }]);
  }, 30_000);
});
