import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { startExampleApp, eventually } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The example app against two real PostgreSQL servers: NDA data in one, audit_log in the other,
// written by a role that has INSERT and SELECT on audit_log and nothing more. Faults hit the
// audit server only, so every request must still succeed.
const WRITE_TIMEOUT_MS = 1500;
const BACKOFF_MS = 100;
const BACKOFF_MAX_MS = 200;
const WRITER = { user: 'audit_writer', password: 'writer-S3cret-pw' };

describe('audit trail against a real PostgreSQL that fails', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;

  const auditRows = (where = 'true', params: unknown[] = []) =>
    auditDb.query<{
      id: string;
      action: string;
      entity_id: string;
      user_id: string;
      outcome: string;
      ip: string;
      changes: unknown;
      metadata: Record<string, unknown>;
    }>(`SELECT * FROM audit_log WHERE ${where} ORDER BY occurred_at`, params, 'audit');
  const health = () => request(app.getHttpServer()).get('/health');
  const createNda = async (n: number, user = 'user-1') => {
    const started = performance.now();
    const response = await request(app.getHttpServer())
      .post('/ndas')
      .set('x-user-id', user)
      .send({ title: `NDA ${n}`, counterparty: 'Acme' });
    return { status: response.status, id: (response.body as { id: string }).id, ms: performance.now() - started };
  };
  const createMany = async (count: number, concurrency = 8) => {
    const results: Awaited<ReturnType<typeof createNda>>[] = [];
    for (let i = 0; i < count; i += concurrency) {
      results.push(...(await Promise.all(Array.from({ length: Math.min(concurrency, count - i) }, (_, j) => createNda(i + j)))));
    }
    return results;
  };
  /** The service tries the database again when the cool-down ends and flushes by itself. */
  const recovered = async () => {
    await eventually(() => stderr.of('audit.recovered').length > 0, 10_000, 'the audit.recovered line');
    expect((await health()).status).toBe(200);
  };
  const expectEachRecordedOnce = async (entityIds: string[]) => {
    const rows = await auditRows('entity_id = ANY($1)', [entityIds]);
    const counts = new Map<string, number>();
    rows.forEach((row) => counts.set(row.entity_id, (counts.get(row.entity_id) ?? 0) + 1));
    expect(entityIds.filter((id) => counts.get(id) !== 1)).toEqual([]);
    expect(rows).toHaveLength(entityIds.length);
  };

  beforeAll(async () => {
    [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    const writerUrl = await createAuditDatabase(auditDb, 'audit', WRITER);
    stderr = new StderrCapture();
    app = await startExampleApp({
      DATABASE_URL: appDb.url(),
      AUDIT_DATABASE_URL: writerUrl,
      AUDIT_WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS),
      AUDIT_RETRY_BACKOFF_MS: String(BACKOFF_MS),
      AUDIT_RETRY_BACKOFF_MAX_MS: String(BACKOFF_MAX_MS),
      AUDIT_BUFFER_SIZE: undefined,
      SENTRY_DSN: undefined,
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
  }, 30_000);

  // A test that fails mid-fault must not take the later ones with it: each starts with the audit
  // server running, the writer's INSERT granted, and the app recovered with nothing buffered.
  beforeEach(async () => {
    await auditDb.ensureRunning();
    await auditDb.query(`GRANT INSERT ON audit_log TO ${WRITER.user}`, [], 'audit');
    await eventually(
      async () => {
        const response = await health();
        return response.status === 200 && (response.body as { info: { audit_db: { buffered: number } } }).info.audit_db.buffered === 0;
      },
      15_000,
      'a healthy audit database with nothing buffered',
    );
    stderr.clear();
  }, 30_000);

  it('records each mutation once with who, what, where and the outcome', async () => {
    const created = await createNda(1, 'alice');
    await request(app.getHttpServer())
      .patch(`/ndas/${created.id}`)
      .set('x-user-id', 'bob')
      .set('user-agent', 'e2e/1.0')
      .send({ title: 'Renamed' })
      .expect(200);
    await request(app.getHttpServer()).delete(`/ndas/${created.id}`).set('x-user-id', 'carol').expect(204);
    await request(app.getHttpServer()).post('/ndas').set('x-user-id', 'dave').send({ title: '' }).expect(400);

    const rows = await eventually(async () => {
      const found = await auditRows(`user_id IN ('alice', 'bob', 'carol', 'dave')`);
      return found.length === 4 && found;
    });
    expect(rows.map((r) => [r.action, r.entity_id, r.user_id, r.outcome])).toEqual([
      ['nda_created', created.id, 'alice', 'success'],
      ['nda_updated', created.id, 'bob', 'success'],
      ['nda_deleted', created.id, 'carol', 'success'],
      ['nda_created', null, 'dave', 'failure'],
    ]);
    expect(rows[1]).toMatchObject({ entity_type: 'NDA', user_agent: 'e2e/1.0', changes: { body: { title: 'Renamed' } } });
    expect(rows[1].ip).toEqual(expect.stringContaining('127.0.0.1'));
    expect(rows[3].metadata).toMatchObject({ statusCode: 400, method: 'POST' });
    expect(stderr.lines).toEqual([]);
  });

  it('connection refused: requests succeed, entries are buffered, health is 503, recovery writes each entry once', async () => {
    await auditDb.kill();
    const during = await createMany(20);
    expect(during.map((r) => r.status)).toEqual(Array(20).fill(201));

    const body = await eventually(async () => {
      const response = await health();
      return response.status === 503 && (response.body as { error: { audit_db: Record<string, unknown> } }).error.audit_db;
    });
    expect(body).toMatchObject({
      status: 'down',
      state: expect.stringMatching(/down|half-open/),
      buffered: 20,
      downSince: expect.any(String),
    });
    expect(String(body.lastError)).toContain('ECONNREFUSED');
    expect(JSON.stringify(body)).not.toContain(WRITER.password);
    expect(JSON.stringify(body)).not.toContain(`127.0.0.1:${auditDb.port}`);

    const failed = stderr.of('audit.db_write_failed');
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed[0]).toMatchObject({ level: 'error', action: 'nda_created', entityType: 'NDA', error: { code: 'ECONNREFUSED' } });
    const buffered = stderr.of('audit.buffered');
    expect(buffered.map((line) => line.entityId).sort()).toEqual(during.map((r) => r.id).sort());
    expect(buffered[0]).toMatchObject({
      timestamp: expect.any(String),
      action: 'nda_created',
      userId: 'user-1',
      entry: { id: buffered[0].auditId, outcome: 'success' },
    });

    await auditDb.restart();
    await recovered();
    const after = await createNda(21);
    await eventually(async () => (await auditRows('entity_id = $1', [after.id])).length === 1, 5000, 'the next entry written directly');
    await expectEachRecordedOnce([...during.map((r) => r.id), after.id]);
    expect(stderr.of('audit.recovered')[0]).toMatchObject({ flushed: 20, dropped: 0 });
  });

  it('table locked: requests stay fast, the hung write times out into the ring, unlock recovers', async () => {
    const locker = await auditDb.connect('audit');
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
    try {
      const during = await createMany(6, 3);
      expect(during.map((r) => r.status)).toEqual(Array(6).fill(201));
      for (const r of during) expect(r.ms).toBeLessThan(WRITE_TIMEOUT_MS / 2);
      await eventually(() => stderr.of('audit.buffered').length === 6, WRITE_TIMEOUT_MS * 4, 'six buffered entries');
      expect(stderr.of('audit.db_write_failed')[0].error).toMatchObject({
        code: expect.stringMatching(/^(55P03|57014|AUDIT_WRITE_TIMEOUT)$/),
      });
      expect((await health()).status).toBe(503);
      await locker.query('COMMIT');
      await recovered();
      await expectEachRecordedOnce(during.map((r) => r.id));
    } finally {
      await locker.end();
    }
  });

  it('write error: REVOKE INSERT sends entries to the ring, GRANT recovers them', async () => {
    await auditDb.query(`REVOKE INSERT ON audit_log FROM ${WRITER.user}`, [], 'audit');
    const during = await createMany(5);
    await eventually(() => stderr.of('audit.buffered').length === 5, 5000, 'five buffered entries');
    expect(stderr.of('audit.db_write_failed')[0].error).toMatchObject({ code: '42501' });
    await auditDb.query(`GRANT INSERT ON audit_log TO ${WRITER.user}`, [], 'audit');
    await recovered();
    await expectEachRecordedOnce(during.map((r) => r.id));
  });

  it('ring overflow: past 1000 entries exactly the evicted ones are counted and logged', async () => {
    const droppedBefore = ((await health()).body as { info: { audit_db: { dropped: number } } }).info.audit_db.dropped;
    await auditDb.kill();
    const during = await createMany(1050, 10);
    expect(during.every((r) => r.status === 201)).toBe(true);
    await eventually(() => stderr.of('audit.buffered').length === 1050, 10_000, '1050 buffered lines');

    const bufferedIds = stderr.of('audit.buffered').map((line) => line.auditId);
    const evicted = stderr.of('audit.evicted');
    // UUIDv7 ids sort in the order of log(): the ring evicts the 50 oldest entries.
    expect(evicted.map((line) => line.auditId)).toEqual([...bufferedIds].sort().slice(0, 50));
    const status = ((await health()).body as { error: { audit_db: { buffered: number; dropped: number } } }).error.audit_db;
    expect(status).toMatchObject({ buffered: 1000, dropped: droppedBefore + 50 });

    await auditDb.restart();
    await recovered();
    const evictedEntities = new Set(evicted.map((line) => line.entityId));
    await expectEachRecordedOnce(during.map((r) => r.id).filter((id) => !evictedEntities.has(id)));
    expect(await auditRows('entity_id = ANY($1)', [[...evictedEntities]])).toEqual([]);
    expect(stderr.of('audit.recovered')[0]).toMatchObject({ flushed: 1000, dropped: 50 });
  }, 60_000);

  it('the table refuses UPDATE, DELETE and TRUNCATE, even for its owner', async () => {
    const [{ id }] = await auditDb.query<{ id: string }>('SELECT id FROM audit_log LIMIT 1', [], 'audit');
    await expect(auditDb.query(`UPDATE audit_log SET action = 'forged' WHERE id = $1`, [id], 'audit')).rejects.toThrow(
      /append-only: UPDATE refused/,
    );
    await expect(auditDb.query(`DELETE FROM audit_log WHERE id = $1`, [id], 'audit')).rejects.toThrow(/append-only: DELETE refused/);
    await expect(auditDb.query(`TRUNCATE audit_log`, [], 'audit')).rejects.toThrow(/append-only: TRUNCATE refused/);
    expect(await auditRows('id = $1', [id])).toHaveLength(1);
  });

  it('shutdown with the database down says on stderr which entries it could not write', async () => {
    await auditDb.kill();
    try {
      const during = await createMany(3);
      await eventually(() => stderr.of('audit.buffered').length === 3, 5000, 'three buffered entries');
      await app.close();
      const dropped = stderr.of('audit.dropped');
      expect(dropped.map((line) => line.entityId).sort()).toEqual(during.map((r) => r.id).sort());
      expect(dropped[0]).toMatchObject({ reason: 'shutdown', level: 'error' });
    } finally {
      // This test closes the app: it stays the last one of the suite.
      await auditDb.restart();
    }
  });
});
