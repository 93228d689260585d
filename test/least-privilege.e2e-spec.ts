import { type INestApplication } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { eventually, startExampleApp } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// The example app writing audit_log as a role that may only INSERT and SELECT it, on a server that
// is then made to refuse that role and finally killed. The role's password (with a character that
// URL-encoding changes), its name, the server's address and the URL must show up nowhere an
// operator or Sentry can read. The triggers stop even the owner (also checked in postgres-faults).
const RANDOM = randomBytes(4).toString('hex');
const WRITER = { user: `auditor_${RANDOM}`, password: `p@ss-W0rd-${RANDOM}` };

describe('audit as a least-privilege role, and the connection secrets', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let ingest: SentryIngest;
  let stderr: StderrCapture;
  let app: INestApplication<Server>;
  let writerUrl: string;
  const healthBodies: string[] = [];

  const health = async () => {
    const response = await request(app.getHttpServer()).get('/health');
    healthBodies.push(response.text);
    return response;
  };
  const createNda = (marker: string) =>
    request(app.getHttpServer())
      .post('/ndas')
      .set('x-request-id', marker)
      .set('x-user-id', 'alice')
      .send({ title: `NDA ${marker}`, counterparty: 'Acme' });
  const rowsWith = (marker: string) => auditDb.query('SELECT * FROM audit_log WHERE request_id = $1', [marker], 'audit');
  const asWriter = async <T>(use: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: writerUrl });
    await client.connect();
    try {
      return await use(client);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    [appDb, auditDb, ingest] = await Promise.all([TestPostgres.start(), TestPostgres.start(), SentryIngest.start()]);
    writerUrl = await createAuditDatabase(auditDb, 'audit', WRITER);
    expect(writerUrl).toContain(`p%40ss-W0rd-${RANDOM}`);
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    stderr = new StderrCapture();
    app = await startExampleApp({
      DATABASE_URL: appDb.url(),
      AUDIT_DATABASE_URL: writerUrl,
      AUDIT_WRITE_TIMEOUT_MS: '1500',
      AUDIT_RETRY_BACKOFF_MS: '100',
      AUDIT_RETRY_BACKOFF_MAX_MS: '200',
      AUDIT_BUFFER_SIZE: undefined,
      AUDIT_HTTP: undefined,
      SENTRY_DSN: undefined,
    });
    // The module connects its DataSource (as the writer) in the background: wait for a first entry.
    expect((await createNda(`lp-${RANDOM}-warm-up`)).status).toBe(201);
    await eventually(async () => (await rowsWith(`lp-${RANDOM}-warm-up`)).length === 1, 30_000, 'the first entry written');
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await Sentry.close(2000);
    await Promise.all([appDb?.stop(), auditDb?.stop(), ingest?.stop()]);
  }, 30_000);

  it('with INSERT and SELECT on audit_log only, the module starts and writes every entry', async () => {
    const created = await createNda(`lp-${RANDOM}-1`);
    expect(created.status).toBe(201);
    const [row] = await eventually(async () => {
      const rows = await rowsWith(`lp-${RANDOM}-1`);
      return rows.length === 1 && rows;
    });
    expect(row).toMatchObject({ action: 'nda_created', entity_id: (created.body as { id: string }).id, outcome: 'success' });
    // The module really runs as that role: its pool's sessions belong to it.
    const sessions = await auditDb.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'audit' AND usename = $1`,
      [WRITER.user],
    );
    expect(Number(sessions[0].n)).toBeGreaterThan(0);
    expect((await health()).status).toBe(200);
  });

  it.each([
    ['UPDATE', `UPDATE audit_log SET action = 'forged'`],
    ['DELETE', `DELETE FROM audit_log`],
    ['TRUNCATE', `TRUNCATE audit_log`],
  ])('that role cannot %s audit_log (permission denied)', async (_verb, sql) => {
    const before = await auditDb.query<{ n: string }>('SELECT count(*) AS n FROM audit_log', [], 'audit');
    await expect(asWriter((client) => client.query(sql))).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/permission denied for table audit_log/),
    });
    expect(await auditDb.query('SELECT count(*) AS n FROM audit_log', [], 'audit')).toEqual(before);
  });

  it.each([
    ['disable the append-only triggers', 'ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete'],
    ['drop the append-only trigger', 'DROP TRIGGER audit_log_no_truncate ON audit_log'],
    ['drop the table', 'DROP TABLE audit_log'],
  ])('nor %s (only the owner may)', async (_what, sql) => {
    await expect(asWriter((client) => client.query(sql))).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/must be owner of (table|relation) audit_log/),
    });
  });

  it.each([
    ['UPDATE', `UPDATE audit_log SET user_id = 'mallory' WHERE request_id = $1`],
    ['DELETE', `DELETE FROM audit_log WHERE request_id = $1`],
  ])('the owner, who holds every privilege, is refused %s by the append-only trigger', async (verb, sql) => {
    const marker = `lp-${RANDOM}-warm-up`;
    const before = await rowsWith(marker);
    expect(before).toHaveLength(1);
    await expect(auditDb.query(sql, [marker], 'audit')).rejects.toMatchObject({
      code: '42501',
      message: `audit_log is append-only: ${verb} refused`,
    });
    expect(await rowsWith(marker)).toEqual(before);
  });

  it('a refused login, then a dead server: /health, stderr and Sentry never show the URL, password, user or address', async () => {
    const secrets = [
      writerUrl,
      WRITER.password,
      encodeURIComponent(WRITER.password),
      WRITER.user,
      `127.0.0.1:${auditDb.port}`,
      `localhost:${auditDb.port}`,
    ];
    // The server refuses the role's login (28P01, a message naming the user)…
    await auditDb.query(`ALTER ROLE ${WRITER.user} PASSWORD 'changed-${RANDOM}'`, [], 'audit');
    await auditDb.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [WRITER.user], 'audit');
    for (let n = 0; n < 3; n += 1) expect((await createNda(`lp-${RANDOM}-refused-${n}`)).status).toBe(201);
    await eventually(
      () => stderr.of('audit.db_write_failed').some((line) => (line.error as { code?: string }).code === '28P01'),
      10_000,
      'a 28P01 failure',
    );
    const refused = await eventually(async () => {
      const response = await health();
      return response.status === 503 && response;
    });
    expect(refused.text).toContain('28P01');

    // …then the server is gone (ECONNREFUSED, a message naming the address).
    await auditDb.kill();
    try {
      for (let n = 0; n < 3; n += 1) expect((await createNda(`lp-${RANDOM}-dead-${n}`)).status).toBe(201);
      await eventually(
        () => stderr.of('audit.db_write_failed').some((line) => (line.error as { code?: string }).code === 'ECONNREFUSED'),
        10_000,
        'an ECONNREFUSED failure',
      );
      const dead = await eventually(async () => {
        const response = await health();
        return response.status === 503 && response.text.includes('ECONNREFUSED') && response;
      });
      expect(dead.text).toContain('ECONNREFUSED');
      await Sentry.flush(2000);
      expect(ingest.events.filter((event) => event.fingerprint?.[0] === 'audit-db-write-failed').length).toBeGreaterThanOrEqual(2);

      const seen = {
        health: healthBodies.join('\n'),
        stderr: jest
          .mocked(process.stderr.write)
          .mock.calls.map(([chunk]) => String(chunk))
          .join(''),
        sentry: ingest.rawBodies.join('\n'),
      };
      const sightings = Object.entries(seen).flatMap(([where, text]) =>
        secrets.filter((secret) => text.includes(secret)).map((secret) => `${where}: ${secret}`),
      );
      expect(sightings).toEqual([]);
      expect(stderr.other).toEqual([]);
    } finally {
      await auditDb.restart();
    }
  }, 60_000);
});
