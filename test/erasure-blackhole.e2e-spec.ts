import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { AuditService } from '../src/audit';
import { runErase } from '../src/audit/privacy/erase-command';
import { eventually } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { sleep, TestPostgres } from './support/postgres';
import { TcpProxy } from './support/tcp-proxy';

// An erasure meets a TCP black hole (the server accepts, never answers): neither `erase()` nor
// `audit-erase` may wait for ever, hold a pool connection for ever, or claim what did not happen.
// docs/PRIVACY.md and docs/FAILURES.md: each round trip is bounded by the client (15 ×
// writeTimeoutMs, at least 5 s, plus writeTimeoutMs), taking a connection by max(writeTimeoutMs, 5 s).
const WRITE_TIMEOUT_MS = 200;
const ROUND_TRIP_MS = 5000 + WRITE_TIMEOUT_MS;
// Far past the bound, far short of "for ever": a caller still waiting then is held.
const HELD_MS = 20_000;

describe('erasure in a black hole', () => {
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const options = {
    writeTimeoutMs: WRITE_TIMEOUT_MS,
    retryBackoffMs: 50,
    retryBackoffMaxMs: 200,
    privacy: { personalData: ['metadata.ip'] },
    integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
  };
  let db: TestPostgres;
  let proxy: TcpProxy;
  let proxied: string;
  let app: INestApplication | undefined;

  const rowsOf = (userId: string) =>
    db.query<{ user_id: string }>(`SELECT user_id FROM audit_log WHERE entity_id = $1 ORDER BY id`, [userId], 'audit');
  const settled = <T>(work: Promise<T>) =>
    Promise.race([
      work.then(
        (value) => ({ value }),
        (error: Error & { code?: string }) => ({ error: { code: error.code, message: error.message } }),
      ),
      sleep(HELD_MS).then(() => 'still waiting'),
    ]);

  beforeAll(async () => {
    db = await TestPostgres.start();
    const url = await createAuditDatabase(db, 'audit', { user: 'audit_writer', password: 'writer-pw' });
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO audit_writer`, [], 'audit');
    proxy = await TcpProxy.start(db.port);
    proxied = url.replace(`:${db.port}/`, `:${proxy.port}/`);
    app = await startErasureApp(proxied, options);
    for (const user of ['u-1', 'u-2']) {
      await app.get(AuditService).log({ action: 'profile_viewed', entityType: 'Profile', entityId: user, userId: user, ip: '203.0.113.7' });
    }
    // Both rows committed before any test cuts the network (on a loaded machine a first write may
    // miss writeTimeoutMs and be retried from the ring).
    await eventually(async () => (await rowsOf('u-1')).length === 1 && (await rowsOf('u-2')).length === 1, 30_000, 'the two rows');
  }, 90_000);

  afterAll(async () => {
    await proxy?.stop();
    await Promise.race([app?.close(), sleep(5000)]);
    await db?.stop();
  }, 30_000);

  it('erase() rejects with AUDIT_DB_TIMEOUT in bounded time, says nothing was erased, and frees its connection', async () => {
    const audit = (app as INestApplication).get(AuditService);
    proxy.blackhole();
    const started = Date.now();
    const outcome = await settled(audit.erase({ userId: 'u-1', requestedBy: 'dpo' }));
    const tookMs = Date.now() - started;
    proxy.forward();
    expect(outcome).toEqual({ error: { code: 'AUDIT_DB_TIMEOUT', message: expect.stringContaining('nothing was erased') } });
    expect(tookMs).toBeLessThan(ROUND_TRIP_MS + 5000);
    expect(await rowsOf('u-1')).toEqual([{ user_id: 'u-1' }]);
    // Once the network is back, an erasure goes through: a connection silenced by the partition
    // fails the try that takes it (within the same bound) and leaves the pool; none is held.
    const next = await eventually(
      async () => {
        const outcome = await settled(audit.erase({ userId: 'u-1', requestedBy: 'dpo' }));
        return 'value' in (outcome as object) && outcome;
      },
      40_000,
      'an erasure after the black hole',
    );
    expect(next).toEqual({ value: expect.objectContaining({ erased: 1 }) });
    expect(await rowsOf('u-1')).toEqual([{ user_id: '[ERASED]' }]);
  }, 60_000);

  it('app.close() is not held by an erase() caught by the black hole', async () => {
    const closing = (app as INestApplication).get(AuditService).erase({ userId: 'u-2', requestedBy: 'dpo' });
    proxy.blackhole();
    const outcome = settled(closing);
    await sleep(500);
    const started = Date.now();
    await Promise.race([(app as INestApplication).close(), sleep(HELD_MS)]);
    const closeMs = Date.now() - started;
    app = undefined;
    proxy.forward();
    expect({ closeMs: closeMs < 4 * WRITE_TIMEOUT_MS + 1500, outcome: await outcome }).toEqual({
      closeMs: true,
      outcome: { error: { code: 'AUDIT_DB_TIMEOUT', message: expect.stringContaining('nothing was erased') } },
    });
    expect(await rowsOf('u-2')).toEqual([{ user_id: 'u-2' }]);
  }, 60_000);

  // Status 3 (docs/FAILURES.md, "The commands' deadlines"): nothing was erased; 2 stays for a COMMIT never answered.
  it('audit-erase exits with status 3 and the timeout within --timeout-ms', async () => {
    proxy.blackhole();
    const lines: string[] = [];
    const started = Date.now();
    const status = await settled(
      runErase(
        ['--url', proxied, '--user', 'u-2', '--by', 'dpo', '--timeout-ms', '5000'],
        { AUDIT_INTEGRITY_ENTRY_KEY: entryKey },
        { out: (l) => lines.push(l), err: (l) => lines.push(l) },
      ),
    );
    const tookMs = Date.now() - started;
    proxy.forward();
    expect({ status, lines }).toEqual({
      status: { value: 3 },
      lines: [expect.stringMatching(/^audit-erase failed: AUDIT_DB_TIMEOUT: .*nothing was erased/)],
    });
    expect(tookMs).toBeLessThan(HELD_MS);
    expect(await rowsOf('u-2')).toEqual([{ user_id: 'u-2' }]);
  }, 60_000);
});
