import { type INestApplication, type INestApplicationContext } from '@nestjs/common';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { type ClientRequest, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { AppModule } from '../../src/app.module';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AuditPartitions, AuditService } from '../../src/audit';

/** Creates the example app as `npm start` would, with `env` applied, listening on a free port. */
export async function startExampleApp(
  env: Record<string, string | undefined>,
  customize: (builder: TestingModuleBuilder) => TestingModuleBuilder = (builder) => builder,
): Promise<INestApplication<Server>> {
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  const moduleRef = await customize(Test.createTestingModule({ imports: [AppModule] })).compile();
  const app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
  await app.listen(0, '127.0.0.1');
  await auditReady(app, process.env.AUDIT_DATABASE_URL ?? process.env.DATABASE_URL);
  await partitionsChecked(app);
  return app;
}

/**
 * When the audit database answers, waits (at most 60 s) until the module has connected it, its
 * migrations run, and is up. The example app connects the audit database in the background, and
 * its first try is bounded by `writeTimeoutMs`: on a loaded machine the migrations outlast it, the
 * first requests' entries wait in the ring, and a suite reading `audit_log` at once finds no table.
 * A database that does not answer (a suite starting the app during an outage) is not waited for.
 */
async function auditReady(app: INestApplication, url: string | undefined): Promise<void> {
  let service: AuditService;
  try {
    service = app.get(AuditService, { strict: false });
  } catch {
    return; // the app runs without the audit module
  }
  if (!url || !(await answers(url))) return;
  // The writer is internal: whether its DataSource is connected and migrated is not part of status().
  const writer = (service as unknown as { writer: { connected: boolean } }).writer;
  const deadline = Date.now() + 60_000;
  while (!(writer.connected && service.status().state === 'up') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether a session to `url` answers `SELECT 1` within 2 s. */
async function answers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000, query_timeout: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Waits for the module's first partition check (and one more, which finds nothing to do), at most
 * 10 s. Start-up waits for it at most `writeTimeoutMs`; on a loaded machine it can take longer,
 * and a suite that locks `audit_log` or seals right after start would then meet that check's
 * locks and the sealing horizon its transaction holds back.
 */
export async function partitionsChecked(app: INestApplicationContext): Promise<void> {
  let partitions: AuditPartitions;
  try {
    partitions = app.get(AuditPartitions, { strict: false });
  } catch {
    return; // the app runs without the audit module
  }
  if (partitions.status() === null) return; // a repository double: nothing is maintained
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([partitions.maintainNow(), new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
  clearTimeout(timer);
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000, what = 'condition'): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${String(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * POSTs `body` as JSON to `path` on a connection of its own, with `headers` besides the JSON ones,
 * and resolves with its client once `reached` has (the request is where the test holds it). The
 * client stays connected until the caller destroys it (a client that leaves, or a timeout).
 */
export async function postAndHold(
  app: INestApplication<Server>,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  reached: Promise<unknown>,
): Promise<ClientRequest> {
  const { port } = app.getHttpServer().address() as AddressInfo;
  const payload = JSON.stringify(body);
  const client = httpRequest({
    port,
    host: '127.0.0.1',
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
  });
  client.on('error', () => undefined);
  client.end(payload);
  await reached;
  return client;
}

/** Whether the audit service is up with nothing buffered or pending within `ms`, as a test waits for it once a fault has healed. */
export function flushedWithin(audit: AuditService, ms: number, what: string): Promise<boolean> {
  return eventually(
    () => {
      const status = audit.status();
      return status.state === 'up' && status.buffered === 0 && status.pending === 0;
    },
    ms,
    what,
  ).catch(() => false);
}

/** Whether the app's own DataSource answers `SELECT 1` within 5 s, as its business code would query it. */
export function dataSourceAnswers(app: INestApplication): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 5000)));
  const answered = app
    .get(DataSource)
    .query('SELECT 1')
    .then(() => true);
  return Promise.race([answered, late]).finally(() => clearTimeout(timer));
}

/**
 * Waits (at most 10 s) until nothing logged so far is on its way to the database: queued or in a
 * batch in flight. The writer keeps several batches in flight, so a later entry's row can commit
 * before an earlier one's: a suite that waits for a later request's row waits for this too.
 */
export async function nothingPending(app: INestApplicationContext): Promise<void> {
  const audit = app.get(AuditService, { strict: false });
  await eventually(() => audit.status().pending === 0, 10_000, 'nothing pending');
}
