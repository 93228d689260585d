import { type INestApplication } from '@nestjs/common';
import { getDataSourceToken, getRepositoryToken } from '@nestjs/typeorm';
import * as Sentry from '@sentry/nestjs';
import { type Server } from 'node:http';
import request from 'supertest';
import { type DataSource, QueryFailedError } from 'typeorm';
import { AUDIT_DATA_SOURCE } from '../src/app.module';
import { AuditLog } from '../src/audit';
import { AuditRepositoryDouble } from '../src/audit/testing';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// The example app with its audit repository replaced by the testing entry point's double, failing
// like a sick database (the driver error carries the host, the password and the query with its
// parameters) until healed, then writing to the real table; the real
// Sentry SDK sending to a local ingest server, and real HTTP.
const BACKOFF_MS = 2000;
const SECRET_PASSWORD = 'db-Pa55word-never-shown';
const SECRET_FIELD = 'hunter2-api-token';

/** A refused connection as the driver reports it: the host, the password and the query with its parameters. */
function sickDatabaseError(host: string): Error {
  const driverError = Object.assign(new Error(`connect ECONNREFUSED ${host} (postgres://audit:${SECRET_PASSWORD}@${host}/audit)`), {
    code: 'ECONNREFUSED',
  });
  return new QueryFailedError(`INSERT INTO audit_log … '${SECRET_FIELD}'`, [SECRET_FIELD], driverError);
}

describe('audit trail with a failing audit repository', () => {
  let db: TestPostgres;
  let ingest: SentryIngest;
  let stderr: StderrCapture;
  let app: INestApplication<Server>;
  let audit: AuditRepositoryDouble;
  const host = '10.1.2.3:6543';

  const createNda = (n: number) =>
    request(app.getHttpServer())
      .post('/ndas')
      .set('x-user-id', `user-${n}`)
      .send({ title: `NDA ${n}`, counterparty: 'Initech' });
  const auditRows = () =>
    db.query<{ id: string; entity_id: string; outcome: string; changes: unknown }>('SELECT id, entity_id, outcome, changes FROM audit_log');

  beforeAll(async () => {
    [db, ingest] = await Promise.all([TestPostgres.start(), SentryIngest.start()]);
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    stderr = new StderrCapture();
    app = await startExampleApp(
      {
        DATABASE_URL: db.url(),
        AUDIT_DATABASE_URL: undefined,
        AUDIT_RETRY_BACKOFF_MS: String(BACKOFF_MS),
        AUDIT_RETRY_BACKOFF_MAX_MS: String(BACKOFF_MS),
        AUDIT_WRITE_TIMEOUT_MS: '1000',
      },
      (builder) =>
        builder.overrideProvider(getRepositoryToken(AuditLog, AUDIT_DATA_SOURCE)).useFactory({
          // The testing entry point's double, passing healthy writes on to the real table.
          factory: async (dataSource: DataSource) => {
            // The module connects the DataSource it writes through; the double's sink needs this one connected.
            if (!dataSource.isInitialized) await dataSource.initialize();
            return (audit = new AuditRepositoryDouble('ok', { sink: dataSource.getRepository(AuditLog) }).fail(sickDatabaseError(host)));
          },
          inject: [getDataSourceToken(AUDIT_DATA_SOURCE)],
        }),
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await Sentry.close(2000);
    await Promise.all([db?.stop(), ingest?.stop()]);
  }, 30_000);

  it('keeps serving while the repository fails, buffers each entry, and says so on stderr and to Sentry', async () => {
    const responses = [];
    for (let n = 0; n < 5; n += 1) responses.push(await createNda(n));
    expect(responses.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    const rejected = await request(app.getHttpServer())
      .post('/ndas')
      .set('x-user-id', 'user-x')
      .send({ title: 'T', counterparty: 'C', apiToken: SECRET_FIELD });
    expect(rejected.status).toBe(400);

    await eventually(() => stderr.of('audit.buffered').length === 6, 5000, 'six buffered lines');
    const health = await request(app.getHttpServer()).get('/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'error', error: { audit_db: { status: 'down', buffered: 6, dropped: 0 } } });

    expect(stderr.other).toEqual([]);
    const [firstFailure] = stderr.of('audit.db_write_failed');
    expect(firstFailure).toMatchObject({
      level: 'error',
      action: 'nda_created',
      entityType: 'NDA',
      userId: expect.stringMatching(/^user-\d$/),
      error: { code: 'ECONNREFUSED' },
    });
    const buffered = stderr.of('audit.buffered');
    // Concurrent batches may fail in either order: the set of entries is what must match.
    const byId = (ids: (string | null)[]) => [...ids].sort((x, y) => String(x).localeCompare(String(y)));
    expect(byId(buffered.map((line) => line.entityId as string | null))).toEqual(
      byId([...responses.map((r) => (r.body as { id: string }).id), null]),
    );
    for (const line of buffered) {
      expect(line).toMatchObject({
        timestamp: expect.any(String),
        action: 'nda_created',
        entityType: 'NDA',
        userId: expect.stringMatching(/^user-/),
        error: { code: 'ECONNREFUSED' },
      });
      expect(line.entry).toMatchObject({
        id: line.auditId,
        action: 'nda_created',
        entityId: line.entityId,
        occurredAt: expect.any(String),
      });
    }
    const rejectedEntry = buffered
      .map((line) => line.entry as { outcome: string; changes: unknown })
      .find((entry) => entry.outcome === 'failure');
    expect(rejectedEntry?.changes).toEqual({
      body: { title: 'T', counterparty: 'C', apiToken: '[REDACTED]' },
    });

    const stderrText = JSON.stringify(stderr.lines) + health.text;
    for (const secret of [SECRET_PASSWORD, SECRET_FIELD, host]) expect(stderrText).not.toContain(secret);

    await Sentry.flush(2000);
    const warnings = ingest.events.filter((event) => event.level === 'warning');
    // One report per failed write attempt, not per entry.
    expect(warnings.length).toBe(stderr.of('audit.db_write_failed').length);
    expect(warnings.length).toBeLessThan(6);
    const firstWarning = warnings.find((event) => event.contexts?.audit?.auditId === firstFailure.auditId);
    expect(firstWarning).toMatchObject({
      fingerprint: ['audit-db-write-failed'],
      tags: { 'audit.action': 'nda_created', 'audit.entity_type': 'NDA', 'audit.error_code': 'ECONNREFUSED' },
      contexts: {
        audit: { action: 'nda_created', userId: firstFailure.userId, entityType: 'NDA', entityId: firstFailure.entityId, attempt: 'write' },
      },
      exception: { values: [{ type: 'AuditDbWriteError', value: expect.stringContaining('ECONNREFUSED') }] },
    });
    const sent = ingest.rawBodies.join('\n');
    for (const secret of [SECRET_PASSWORD, SECRET_FIELD, host, '"changes"']) expect(sent).not.toContain(secret);
  });

  it('flushes every buffered entry exactly once when the repository heals, and reports the recovery', async () => {
    audit.heal();
    await eventually(() => stderr.of('audit.recovered').length === 1, 5000, 'the audit.recovered line');
    const after = await createNda(99);
    expect(after.status).toBe(201);
    await eventually(async () => (await auditRows()).length === 7, 5000, 'the next entry written directly');

    const rows = await auditRows();
    const ids = rows.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(rows).toHaveLength(7);
    const bufferedIds = stderr.of('audit.buffered').map((line) => line.auditId);
    expect(ids).toEqual(expect.arrayContaining(bufferedIds));
    expect(rows.filter((r) => r.outcome === 'failure')).toHaveLength(1);
    expect(stderr.of('audit.recovered')[0]).toMatchObject({ level: 'info', flushed: 6, dropped: 0 });
    expect((await request(app.getHttpServer()).get('/health')).status).toBe(200);

    await Sentry.flush(2000);
    const recovery = ingest.events.find((event) => event.level === 'info');
    expect(recovery).toMatchObject({
      message: 'Audit database recovered',
      fingerprint: ['audit-db-recovered'],
      contexts: { audit: { flushed: 6, dropped: 0 } },
    });
  });
});
