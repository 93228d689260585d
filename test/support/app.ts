import { type INestApplication } from '@nestjs/common';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { type ClientRequest, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { AppModule } from '../../src/app.module';
import { AuditPartitions } from '../../src/audit';

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
  await partitionsChecked(app);
  return app;
}

/**
 * Waits for the module's first partition check (and one more, which finds nothing to do), at most
 * 10 s. Start-up waits for it at most `writeTimeoutMs`; on a loaded machine it can take longer,
 * and a suite that locks `audit_log` or seals right after start would then meet that check's
 * locks and the sealing horizon its transaction holds back.
 */
export async function partitionsChecked(app: INestApplication): Promise<void> {
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
