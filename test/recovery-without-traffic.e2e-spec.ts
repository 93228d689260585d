import { type INestApplication } from '@nestjs/common';
import { readdir, rm } from 'node:fs/promises';
import { type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Issue 19, case 4: when /health is the readiness probe, no traffic comes while it answers 503, so
// recovery must not wait for an entry. The service tries the database on its backoff timer even
// when it holds nothing to write. The app runs in sync mode with a spool.
const BACKOFF_MS = 200;
const BACKOFF_MAX_MS = 400;
// The try after the restart comes within one capped cool-down; the rest is load on a shared machine.
const WITHIN_MS = BACKOFF_MAX_MS + 3000;
// Also the deadline of each spool file operation: the module's default, so that a loaded disk takes
// the outage's entry (the server is killed: writes fail at once, only the locked-table probes wait it out).
const WRITE_TIMEOUT_MS = 2000;

describe('recovery on the backoff timer, with no traffic at all', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const spoolDir = join(tmpdir(), `audit-probe-spool-${process.pid}`);

  const health = () => request(app.getHttpServer()).get('/health');
  const auditState = async () => {
    const body = (await health()).body as { details: { audit_db: { state: string; buffered: number; spooled: number } } };
    return body.details.audit_db;
  };
  const createNda = (marker: string) =>
    request(app.getHttpServer())
      .post('/ndas')
      .set('x-request-id', marker)
      .send({ title: `NDA ${marker}`, counterparty: 'Initech' });
  const auditRows = (requestId: string) => auditDb.query(`SELECT id FROM audit_log WHERE request_id = $1`, [requestId]);

  /** Kills the audit server and waits until a request has turned the service down. */
  const outage = async (marker: string) => {
    await auditDb.kill();
    stderr.clear();
    expect((await createNda(marker)).status).toBe(201);
    await eventually(async () => (await health()).status === 503, 5000, '/health 503');
    // The tries go on while the server is away: at least one failed try on the timer.
    await eventually(() => stderr.of('audit.db_write_failed').length >= 2, 5000, 'a failed try on the timer');
  };

  /** Restarts the audit server and, sending no request but GET /health, waits for 200. */
  const recoveredWithoutTraffic = async () => {
    await auditDb.restart();
    const back = Date.now();
    await eventually(async () => (await health()).status === 200, WITHIN_MS, '/health 200 again');
    return Date.now() - back;
  };

  beforeAll(async () => {
    await rm(spoolDir, { recursive: true, force: true });
    [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    stderr = new StderrCapture();
    app = await startExampleApp({
      DATABASE_URL: appDb.url(),
      AUDIT_DATABASE_URL: auditDb.url(),
      AUDIT_WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS),
      AUDIT_RETRY_BACKOFF_MS: String(BACKOFF_MS),
      AUDIT_RETRY_BACKOFF_MAX_MS: String(BACKOFF_MAX_MS),
      AUDIT_BUFFER_SIZE: undefined,
      AUDIT_SPOOL_DIR: spoolDir,
      AUDIT_MODE: 'sync',
      SENTRY_DSN: undefined,
    });
    expect((await createNda('probe-warm-up')).status).toBe(201);
    // On a loaded machine the first write may miss its deadline and be spooled, then replayed: the
    // outages below start from a service that is up and keeps nothing.
    await eventually(
      async () => {
        const state = await auditState();
        return (await auditRows('probe-warm-up')).length === 1 && state.state === 'up' && state.buffered === 0 && state.spooled === 0;
      },
      30_000,
      'the first entry written, nothing kept',
    );
  }, 90_000);

  afterAll(async () => {
    await auditDb?.ensureRunning();
    await app?.close();
    stderr?.restore();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
    await rm(spoolDir, { recursive: true, force: true });
  }, 30_000);

  it('the entry of the outage waits in the spool: the timer replays it once the server is back', async () => {
    await outage('probe-spooled');
    expect(await auditState()).toMatchObject({ state: expect.stringMatching(/down|half-open/), spooled: 1 });
    expect(await recoveredWithoutTraffic()).toBeLessThan(WITHIN_MS);
    expect(await auditRows('probe-spooled')).toHaveLength(1);
    expect(stderr.of('audit.recovered')).toEqual([expect.objectContaining({ flushed: 1, dropped: 0 })]);
  });

  /**
   * An outage whose one entry is lost from the spool (its segment removed while the server is
   * away: counted and reported once as `spool_segment_missing`): nothing is kept at all.
   */
  const outageKeepingNothing = async (marker: string) => {
    await outage(marker);
    expect(await auditState()).toMatchObject({ state: expect.stringMatching(/down|half-open/), spooled: 1 });
    for (const name of await readdir(spoolDir)) if (name.endsWith('.ndjson')) await rm(join(spoolDir, name));
    await eventually(() => stderr.of('audit.dropped').length === 1, 5000, 'the lost segment reported');
    expect(stderr.of('audit.dropped')).toEqual([expect.objectContaining({ reason: 'spool_segment_missing' })]);
    expect(await auditState()).toMatchObject({ state: expect.stringMatching(/down|half-open/), buffered: 0, spooled: 0 });
  };

  it('nothing waits at all (the spooled entry was lost): a probe on the timer brings the service up', async () => {
    await outageKeepingNothing('probe-dropped');
    expect(await recoveredWithoutTraffic()).toBeLessThan(WITHIN_MS);
    expect(await auditState()).toMatchObject({ state: 'up', buffered: 0, spooled: 0 });
    expect(stderr.of('audit.recovered')).toEqual([expect.objectContaining({ flushed: 0, dropped: 1 })]);
    // Recovered for real: the next entry is committed at once.
    expect((await createNda('probe-after')).status).toBe(201);
    expect(await auditRows('probe-after')).toHaveLength(1);
  });

  /**
   * An outage keeping nothing, then the server restarted with `audit_log` locked by a session that
   * the caller ends. The service tries on its timer (every 400 ms at most): a try that commits
   * between the restart and the lock (a slow machine) brings it up, and the outage is made again.
   */
  const restartedLocked = async (marker: string) => {
    for (let attempt = 1; ; attempt++) {
      await outageKeepingNothing(`${marker}-${attempt}`);
      await auditDb.restart();
      const locker = await auditDb.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
      if ((await auditState()).state !== 'up' || attempt === 3) return locker;
      await locker.query('COMMIT');
      await locker.end();
    }
  };

  it('the probe is an INSERT: a server that answers but holds the table locked keeps the service down', async () => {
    const locker = await restartedLocked('probe-locked');
    try {
      stderr.clear();
      // A SELECT 1 would answer at once; the zero-row INSERT waits for the lock and times out.
      const probes = await eventually(
        () => stderr.of('audit.db_write_failed').length >= 2 && stderr.of('audit.db_write_failed'),
        10_000,
        'two failed probes against the locked table',
      );
      expect(probes.slice(0, 2)).toEqual([
        expect.objectContaining({
          attempt: 'probe',
          entries: 0,
          error: expect.objectContaining({ code: expect.stringMatching(/^(55P03|57014|AUDIT_WRITE_TIMEOUT)$/) }),
        }),
        expect.objectContaining({ attempt: 'probe', entries: 0 }),
      ]);
      expect((await health()).status).toBe(503);
      await locker.query('COMMIT');
      const back = Date.now();
      await eventually(async () => (await health()).status === 200, WITHIN_MS + 2000, '/health 200 once the lock is gone');
      expect(Date.now() - back).toBeLessThan(WITHIN_MS + 2000);
    } finally {
      await locker.end();
    }
  });
});
