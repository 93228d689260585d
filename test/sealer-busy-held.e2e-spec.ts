import { type INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { SEALER_LOCK } from '../src/audit/integrity/seal-store';
import { fakeDateOnly } from './support/fake-date';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The true case of AUDIT_SEALER_BUSY, end to end: one session holds the sealer's lock in one
// transaction and never lets it go. The sealer's own role may not read that session's
// pg_stat_activity.xact_start (a superuser's), so it measures the hold from its first sighting of
// that same transaction. Only Date is faked: 12 minutes pass between three attempts.
const MINUTE = 60_000;
const PASSWORD = 'sealer-busy-pw';

describe('AUDIT_SEALER_BUSY: one session holding the sealer lock past the limit', () => {
  const database = 'sealer_busy';
  let db: TestPostgres;
  let app: INestApplication | undefined;
  let stderr: StderrCapture | undefined;
  let holder: Client | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query(`CREATE ROLE sealer_role LOGIN PASSWORD '${PASSWORD}'`);
  }, 60_000);

  afterAll(async () => {
    jest.useRealTimers();
    await holder?.end().catch(() => undefined);
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('fails each attempt that finds the same transaction holding it past 10 minutes, naming its pid, and seals once it is let go', async () => {
    stderr = new StderrCapture();
    fakeDateOnly();
    app = await startSealingApp(db.url(database), {
      integrity: { intervalMs: 3_600_000, sealerDatabaseUrl: db.url(database, 'sealer_role', PASSWORD) },
    });
    await db.query(`GRANT SELECT ON audit_log TO sealer_role`, [], database);
    await db.query(`GRANT INSERT, SELECT ON audit_seal TO sealer_role`, [], database);
    const sealer = app.get(AuditSealer);
    await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'n-1' });
    holder = new Client({ connectionString: db.url(database) });
    await holder.connect();
    const [{ pid }] = (await holder.query('SELECT pg_backend_pid() AS pid')).rows as { pid: number }[];
    await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${SEALER_LOCK})`);
    for (let round = 0; round < 3; round += 1) {
      await sealer.sealNow();
      jest.setSystemTime(Date.now() + 6 * MINUTE);
    }
    await sealer.sealNow();
    const busy = stderr
      .of(AUDIT_EVENTS.sealFailed)
      .map((line) => (line as unknown as { error: { code: string; message: string } }).error)
      .filter((error) => error.code === 'AUDIT_SEALER_BUSY');
    // Seconds the hold is reported at: 12 and 18 minutes, plus the real time the attempts took.
    const seconds = busy.map((error) => Number(error.message.match(/has held the sealer's lock for (\d+) s/)?.[1]));
    expect(seconds).toHaveLength(2);
    expect(seconds[0]).toBeGreaterThanOrEqual(720);
    expect(seconds[0]).toBeLessThan(780);
    expect(seconds[1] - seconds[0]).toBeGreaterThanOrEqual(359);
    expect(busy[0].message).toContain(`session pid ${pid} has held`);
    expect(sealer.status()?.failures).toBe(2);
    await holder.query('COMMIT');
    await sealer.sealNow();
    jest.useRealTimers();
    expect(sealer.status()).toMatchObject({ failures: 0, sealed: 1 });
  }, 60_000);
});
