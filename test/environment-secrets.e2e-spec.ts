import { type INestApplication } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { runErase } from '../src/audit/privacy/erase-command';
import { eventually, startExampleApp } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// docs/FAILURES.md, "Safe output": no secret of the connection reaches /health, stderr or Sentry.
// `pg` takes the user, password and host from PGUSER, PGPASSWORD and PGHOST when the DataSource's
// options (or a command's URL) leave them out, and PostgreSQL's refusal of a login names the user
// (`password authentication failed for user "…"`), Node's failed connection to a Unix socket its
// directory (`connect ENOENT <PGHOST>/.s.PGSQL.5432`). Those are the connection's secrets too.
const RANDOM = randomBytes(4).toString('hex');
const WRITER = { user: `env_auditor_${RANDOM}`, password: `env-pw-${RANDOM}` };
const VARIABLES = ['PGUSER', 'PGPASSWORD', 'PGHOST'] as const;

describe('the connection secrets pg takes from the environment', () => {
  const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));
  const entryKey = { AUDIT_INTEGRITY_ENTRY_KEY: `k1:${Buffer.alloc(32, 7).toString('base64')}` };
  let db: TestPostgres;
  let ingest: SentryIngest;
  let stderr: StderrCapture | undefined;
  let app: INestApplication<Server> | undefined;
  let anonymousUrl: string;

  const setEnvironment = (values: Partial<Record<(typeof VARIABLES)[number], string>>) => {
    for (const name of VARIABLES) {
      const value = values[name] ?? saved[name];
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  const eraseLines = async (url: string) => {
    const err: string[] = [];
    const code = await runErase(['--url', url, '--by', 'dpo', '--user', 'u-1', '--timeout-ms', '10000'], entryKey, {
      out: () => undefined,
      err: (line) => err.push(line),
    });
    return { code, err: err.join('\n') };
  };

  beforeAll(async () => {
    [db, ingest] = await Promise.all([TestPostgres.start(), SentryIngest.start()]);
    await createAuditDatabase(db, 'audit', WRITER);
    // The audit database's URL names neither the user nor the password: pg takes PGUSER and PGPASSWORD.
    anonymousUrl = `postgres://127.0.0.1:${db.port}/audit`;
  }, 90_000);

  afterAll(async () => {
    // Lets the module write again before it shuts down.
    await db?.query(`ALTER ROLE ${WRITER.user} PASSWORD '${WRITER.password}'`).catch(() => undefined);
    await app?.close();
    stderr?.restore();
    await Sentry.close(2000);
    setEnvironment({});
    await Promise.all([db?.stop(), ingest?.stop()]);
  }, 30_000);

  it("audit-erase, refused the PGUSER's login, names neither the user nor the password", async () => {
    setEnvironment({ PGUSER: WRITER.user, PGPASSWORD: `wrong-${WRITER.password}` });
    try {
      const { code, err } = await eraseLines(anonymousUrl);
      expect(code).toBe(2);
      expect(err).toMatch(/^audit-erase failed: 28P01: password authentication failed for user "\[redacted\]"/);
      expect([err.includes(WRITER.user), err.includes(WRITER.password)]).toEqual([false, false]);
    } finally {
      setEnvironment({});
    }
  }, 60_000);

  it("audit-erase, given no host, does not name PGHOST's socket directory", async () => {
    const socketDir = join(tmpdir(), `audit-no-server-${RANDOM}`);
    setEnvironment({ PGHOST: socketDir, PGUSER: WRITER.user, PGPASSWORD: WRITER.password });
    try {
      const { code, err } = await eraseLines('postgres:///audit');
      expect(code).toBe(2);
      expect(err).toMatch(/^audit-erase failed: ENOENT: connect ENOENT \[redacted\]\/\.s\.PGSQL\.\d+/);
      expect(err).not.toContain(socketDir);
    } finally {
      setEnvironment({});
    }
  }, 60_000);

  it('the example app, its audit role refused: /health, stderr and Sentry name neither the role nor its password', async () => {
    setEnvironment({ PGUSER: WRITER.user, PGPASSWORD: WRITER.password });
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    stderr = new StderrCapture();
    app = await startExampleApp({
      DATABASE_URL: db.url(),
      AUDIT_DATABASE_URL: anonymousUrl,
      AUDIT_WRITE_TIMEOUT_MS: '1500',
      AUDIT_RETRY_BACKOFF_MS: '100',
      AUDIT_RETRY_BACKOFF_MAX_MS: '200',
      AUDIT_BUFFER_SIZE: undefined,
      AUDIT_HTTP: undefined,
      SENTRY_DSN: undefined,
    });
    const server = app.getHttpServer();
    const healthBodies: string[] = [];
    const health = async () => {
      const response = await request(server).get('/health');
      healthBodies.push(response.text);
      return response;
    };
    const createNda = (marker: string) =>
      request(server)
        .post('/ndas')
        .set('x-request-id', marker)
        .send({ title: `NDA ${marker}`, counterparty: 'Acme' });
    // The module writes as PGUSER: a first entry reaches audit_log.
    expect((await createNda(`env-${RANDOM}-warm-up`)).status).toBe(201);
    await eventually(
      async () => (await db.query(`SELECT 1 FROM audit_log WHERE request_id = $1`, [`env-${RANDOM}-warm-up`], 'audit')).length === 1,
      30_000,
      'the first entry written',
    );

    await db.query(`ALTER ROLE ${WRITER.user} PASSWORD 'changed-${RANDOM}'`);
    await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [WRITER.user]);
    for (let n = 0; n < 3; n += 1) expect((await createNda(`env-${RANDOM}-refused-${n}`)).status).toBe(201);
    const captured = stderr;
    await eventually(
      () => captured.of('audit.db_write_failed').some((line) => (line.error as { code?: string }).code === '28P01'),
      20_000,
      'a 28P01 failure',
    );
    const refused = await eventually(async () => {
      const response = await health();
      return response.status === 503 && response.text.includes('28P01') && response;
    });
    expect(refused.text).toContain('password authentication failed for user');
    await Sentry.flush(2000);
    expect(ingest.events.filter((event) => event.fingerprint?.[0] === 'audit-db-write-failed').length).toBeGreaterThanOrEqual(1);

    const seen = {
      health: healthBodies.join('\n'),
      stderr: jest
        .mocked(process.stderr.write)
        .mock.calls.map(([chunk]) => String(chunk))
        .join(''),
      sentry: ingest.rawBodies.join('\n'),
    };
    const sightings = Object.entries(seen).flatMap(([where, text]) =>
      [WRITER.user, WRITER.password].filter((secret) => text.includes(secret)).map((secret) => `${where}: ${secret}`),
    );
    expect(sightings).toEqual([]);
    expect(captured.other).toEqual([]);
  }, 90_000);
});
