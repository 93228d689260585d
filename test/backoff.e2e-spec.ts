import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The cool-down between tries, as an operator reads it on stderr: the example app with its audit
// server killed and left down, one entry buffered, and the tries the service makes by itself.
const BACKOFF_MS = 250;
const BACKOFF_MAX_MS = 1000;
// Each cool-down lies in [d/2, d] ("equal jitter"), d doubling from BACKOFF_MS up to the cap.
const CEILINGS = [250, 500, 1000, 1000, 1000];
// retryAt and the line's timestamp are two clock readings a few statements apart, each cut to ms.
const SLACK_MS = 25;

describe('retry backoff against a real PostgreSQL that stays down', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;

  const createNda = (marker: string) =>
    request(app.getHttpServer())
      .post('/ndas')
      .set('x-request-id', marker)
      .send({ title: `NDA ${marker}`, counterparty: 'Initech' });

  beforeAll(async () => {
    [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    stderr = new StderrCapture();
    app = await startExampleApp({
      DATABASE_URL: appDb.url(),
      AUDIT_DATABASE_URL: auditDb.url(),
      AUDIT_WRITE_TIMEOUT_MS: '1000',
      AUDIT_RETRY_BACKOFF_MS: String(BACKOFF_MS),
      AUDIT_RETRY_BACKOFF_MAX_MS: String(BACKOFF_MAX_MS),
      AUDIT_BUFFER_SIZE: undefined,
      AUDIT_SPOOL_DIR: undefined,
      AUDIT_MODE: undefined,
      SENTRY_DSN: undefined,
    });
    // The module connects its DataSource in the background: the outage starts once it writes.
    expect((await createNda('backoff-warm-up')).status).toBe(201);
    await eventually(
      async () => (await auditDb.query(`SELECT 1 FROM audit_log WHERE request_id = 'backoff-warm-up'`)).length === 1,
      30_000,
      'the first entry written',
    );
  }, 90_000);

  afterAll(async () => {
    await auditDb?.ensureRunning();
    await app?.close();
    stderr?.restore();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
  }, 30_000);

  it('doubles the cool-down after each failed try, with jitter, up to retryBackoffMaxMs', async () => {
    await auditDb.kill();
    stderr.clear();
    expect((await createNda('backoff-1')).status).toBe(201);
    const failed = await eventually(
      () => stderr.of('audit.db_write_failed').length >= CEILINGS.length && stderr.of('audit.db_write_failed'),
      15_000,
      `${CEILINGS.length} audit.db_write_failed lines`,
    );
    const tries = failed.slice(0, CEILINGS.length);
    const coolDowns = tries.map((line) => Date.parse(line.retryAt as string) - Date.parse(line.timestamp));
    const inRange = coolDowns.map((ms, i) => ms >= CEILINGS[i] / 2 - SLACK_MS && ms <= CEILINGS[i] + SLACK_MS);
    expect({ coolDowns, inRange }).toEqual({ coolDowns, inRange: CEILINGS.map(() => true) });
    // No try came before the time the previous line announced (give or take a timer's millisecond).
    tries
      .slice(1)
      .forEach((line, i) => expect(Date.parse(line.timestamp)).toBeGreaterThanOrEqual(Date.parse(tries[i].retryAt as string) - 2));
    expect(tries.map((line) => line.attempt)).toEqual(['write', 'probe', 'probe', 'probe', 'probe']);
    expect(stderr.of('audit.buffered').map((line) => (line.entry as { requestId: string }).requestId)).toEqual(['backoff-1']);
  }, 30_000);
});
