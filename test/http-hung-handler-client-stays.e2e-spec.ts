// docs/GUIDE.md, "Every mutation is audited, once", and README's failure table: a handler that
// never ends is recorded as a `failure` with `reason: "unfinished"` once `unfinishedAfterMs` has
// passed since the request began, whether its client left or stays connected (a proxy or load
// balancer holding the connection, a client without a timeout). At shutdown, a request still in
// flight after a short grace is recorded so too, before the module's buffer drains, rather than
// dropped.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type ClientRequest, type Server } from 'node:http';
import { DataSource } from 'typeorm';
import { eventually, postAndHold } from './support/app';
import { TestPostgres } from './support/postgres';
import { startAuditApp } from './support/tx-app';

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
    const nest = await startAuditApp(db, {
      database,
      audit: { writeTimeoutMs: 1000, unfinishedAfterMs: 100 },
      controllers: [TransfersController],
    });
    apps.push(nest);
    return nest;
  }

  /** Sends a transfer whose handler hangs after committing; the client stays connected. */
  async function sendAndStay(on: INestApplication<Server>, tag: string): Promise<void> {
    const inHandler = new Promise<void>((resolve) => started.set(tag, resolve));
    clients.push(await postAndHold(on, '/transfers', { tag }, { 'x-request-id': tag }, inHandler));
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
