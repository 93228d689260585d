import { type INestApplication } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The durable spool and sync mode, with the example app on two real PostgreSQL servers (NDA data
// and audit_log apart) and the audit one failing.
// Also the deadline of each spool file operation: the module's default, so that a loaded disk
// takes what the tests spool (the audit database here fails at once: killed, not held).
const WRITE_TIMEOUT_MS = 2000;

describe('durability: spool and sync mode', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let spoolDir: string;
  let stderr: StderrCapture;
  let app: INestApplication<Server> | undefined;

  const env = (extra: Record<string, string | undefined> = {}) => ({
    DATABASE_URL: appDb.url(),
    AUDIT_DATABASE_URL: auditDb.url(),
    AUDIT_SPOOL_DIR: spoolDir,
    AUDIT_WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS),
    AUDIT_RETRY_BACKOFF_MS: '100',
    AUDIT_RETRY_BACKOFF_MAX_MS: '200',
    AUDIT_BUFFER_SIZE: undefined,
    AUDIT_MODE: undefined,
    SENTRY_DSN: undefined,
    ...extra,
  });
  const start = async (extra: Record<string, string | undefined> = {}) => (app = await startExampleApp(env(extra)));
  const stop = async () => {
    await app?.close();
    app = undefined;
  };
  const server = () => app!.getHttpServer();
  const createNda = async (n: number) => {
    const started = performance.now();
    const response = await request(server())
      .post('/ndas')
      .send({ title: `NDA ${n}`, counterparty: 'Globex' });
    expect(response.status).toBe(201);
    return { id: (response.body as { id: string }).id, ms: performance.now() - started };
  };
  const health = async () => {
    const body = (await request(server()).get('/health')).body as { details: { audit_db: Record<string, unknown> } };
    return body.details.audit_db;
  };
  const rowsFor = async (ids: string[]) => {
    const rows = await auditDb.query<{ entity_id: string; n: string }>(
      'SELECT entity_id, count(*) AS n FROM audit_log WHERE entity_id = ANY($1) GROUP BY entity_id',
      [ids],
    );
    return new Map(rows.map((r) => [r.entity_id, Number(r.n)]));
  };
  const expectEachOnce = async (ids: string[]) => {
    const counts = await rowsFor(ids);
    expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
  };
  const spooledLines = async () => {
    const names = (await readdir(spoolDir)).filter((n) => n.endsWith('.ndjson'));
    const texts = await Promise.all(names.map((n) => readFile(join(spoolDir, n), 'utf8')));
    return texts.join('').split('\n').filter(Boolean);
  };

  beforeAll(async () => {
    [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    stderr = new StderrCapture();
  }, 60_000);

  beforeEach(async () => {
    spoolDir = join(await mkdtemp(join(tmpdir(), 'audit-spool-e2e-')), 'spool');
    stderr.clear();
  });

  afterEach(async () => {
    await stop();
    await auditDb.ensureRunning();
    await rm(join(spoolDir, '..'), { recursive: true, force: true });
  });

  afterAll(async () => {
    stderr?.restore();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
  }, 30_000);

  it('async: what overflows the ring lands in the spool (0600), and recovery writes every entry once', async () => {
    await start({ AUDIT_BUFFER_SIZE: '10' });
    await auditDb.kill();
    const sent = [];
    for (let n = 0; n < 30; n += 1) sent.push(await createNda(n));
    // The spool counts an entry when it takes it; its audit.spooled line follows once the append answers.
    await eventually(
      async () => (await health()).spooled === 20 && stderr.of('audit.spooled').length === 20,
      5000,
      '20 spooled entries and their lines',
    );
    expect(await health()).toMatchObject({
      state: expect.stringMatching(/down|half-open/),
      buffered: 10,
      spooled: 20,
      dropped: 0,
      spoolBytes: expect.any(Number),
    });
    expect(stderr.of('audit.evicted')).toHaveLength(20);
    expect(stderr.of('audit.spooled').map((l) => l.entityId)).toEqual(sent.slice(0, 20).map((s) => s.id));
    for (const name of await readdir(spoolDir)) expect((await stat(join(spoolDir, name))).mode & 0o777).toBe(0o600);

    await auditDb.restart();
    await eventually(async () => (await health()).state === 'up' && (await health()).spooled === 0, 10_000, 'recovery');
    await expectEachOnce(sent.map((s) => s.id));
    expect(await spooledLines()).toEqual([]);
  });

  it('async: app.close() with the database down puts every queued entry in the spool; the next start replays it', async () => {
    await start();
    await auditDb.kill();
    const sent = [];
    for (let n = 0; n < 5; n += 1) sent.push(await createNda(n));
    await eventually(async () => (await health()).buffered === 5, 5000, 'five buffered entries');
    await stop();
    const lines = await spooledLines();
    expect(lines).toHaveLength(5);
    expect(stderr.of('audit.dropped')).toEqual([]);

    await auditDb.restart();
    await start();
    await eventually(async () => (await health()).spooled === 0, 10_000, 'the start-up replay');
    await expectEachOnce(sent.map((s) => s.id));
  });

  it('sync: the response goes out once the audit row is committed', async () => {
    await start({ AUDIT_MODE: 'sync' });
    for (let n = 0; n < 5; n += 1) {
      const { id } = await createNda(n);
      // No waiting: the row must already be there.
      expect((await rowsFor([id])).get(id)).toBe(1);
    }
  });

  it('sync: a refused request is recorded as a failure with its status code before the response goes out', async () => {
    await start({ AUDIT_MODE: 'sync' });
    await createNda(0);
    // Every audit INSERT takes SLOW_INSERT_MS to commit: a row written after the response would
    // not be there yet when the test reads it.
    const SLOW_INSERT_MS = 400;
    await auditDb.query(
      `CREATE FUNCTION slow_audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN PERFORM pg_sleep(${SLOW_INSERT_MS / 1000}); RETURN NULL; END $$`,
    );
    await auditDb.query(
      'CREATE TRIGGER slow_audit_insert BEFORE INSERT ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION slow_audit_insert()',
    );
    const refused = [
      { requestId: 'sync-refused-400', status: 400, send: () => request(server()).post('/ndas').send({ title: '' }) },
      { requestId: 'sync-refused-404', status: 404, send: () => request(server()).patch(`/ndas/${randomUUID()}`).send({ title: 'x' }) },
    ];
    try {
      for (const { requestId, status, send } of refused) {
        const started = performance.now();
        expect((await send().set('x-request-id', requestId)).status).toBe(status);
        expect(performance.now() - started).toBeGreaterThanOrEqual(SLOW_INSERT_MS * 0.9);
        // No waiting: the row must already be there.
        const rows = await auditDb.query<{ outcome: string; metadata: { statusCode: number } }>(
          'SELECT outcome, metadata FROM audit_log WHERE request_id = $1',
          [requestId],
        );
        expect(rows.map((row) => [row.outcome, row.metadata.statusCode])).toEqual([['failure', status]]);
      }
    } finally {
      await auditDb.query('DROP TRIGGER slow_audit_insert ON audit_log');
      await auditDb.query('DROP FUNCTION slow_audit_insert()');
    }
  });

  it('sync: with the database down, the response goes out once the entry is fsynced to the spool, within the write timeout', async () => {
    await start({ AUDIT_MODE: 'sync' });
    await auditDb.kill();
    try {
      for (let n = 0; n < 5; n += 1) {
        const { id, ms } = await createNda(n);
        expect((await spooledLines()).some((line) => line.includes(id))).toBe(true);
        // At most the write timeout for the database, then at most the write timeout for the spool.
        expect(ms).toBeLessThan(2 * WRITE_TIMEOUT_MS);
      }
      expect(await health()).toMatchObject({ buffered: 0, spooled: 5 });
    } finally {
      await auditDb.restart();
    }
  });
});
