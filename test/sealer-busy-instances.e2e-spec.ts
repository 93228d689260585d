import { type INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { SEALER_LOCK } from '../src/audit/integrity/seal-store';
import { sealerLockHolder } from '../src/audit/integrity/sealer-lock-holder';
import { fakeDateOnly } from './support/fake-date';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// AUDIT_SEALER_BUSY says one session has held the sealer's lock too long (docs/RUNBOOK.md), so it
// measures one holder: a second instance whose attempts each land while another session holds the
// lock for an instant (a catch-up, one seal after another) is not a long hold. Only Date is faked:
// the 10 minutes pass between three attempts, each of which finds the lock taken for a moment.
const MINUTE = 60_000;

describe("AUDIT_SEALER_BUSY measures one holder of the sealer's lock", () => {
  let db: TestPostgres;
  let app: INestApplication | undefined;
  let stderr: StderrCapture | undefined;
  let other: Client | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('trail');
  }, 60_000);

  afterAll(async () => {
    jest.useRealTimers();
    await other?.end().catch(() => undefined);
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('three attempts 6 minutes apart, each meeting another holder for an instant, report no AUDIT_SEALER_BUSY', async () => {
    stderr = new StderrCapture();
    // The sealer's watch takes Date.now when it is made: Date is faked before the app starts.
    fakeDateOnly();
    app = await startSealingApp(db.url('trail'), { integrity: { intervalMs: 3_600_000 } });
    other = new Client({ connectionString: db.url('trail') });
    await other.connect();
    const sealer = app.get(AuditSealer);
    await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'n-1' });
    const heldFor: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      const held = process.hrtime.bigint();
      await other.query(`BEGIN; SELECT pg_advisory_xact_lock(${SEALER_LOCK})`);
      await sealer.sealNow();
      await other.query('COMMIT');
      heldFor.push(Number((process.hrtime.bigint() - held) / 1_000_000n));
      jest.setSystemTime(Date.now() + 6 * MINUTE);
    }
    jest.useRealTimers();
    expect(heldFor.every((ms) => ms < MINUTE)).toBe(true);
    const busy = stderr.of(AUDIT_EVENTS.sealFailed).filter((line) => JSON.stringify(line).includes('AUDIT_SEALER_BUSY'));
    expect(busy).toEqual([]);
  }, 60_000);

  it("finds the session holding the lock in pg_locks, with its transaction's age by the database's clock", async () => {
    const reader = new Client({ connectionString: db.url('trail') });
    const holding = new Client({ connectionString: db.url('trail') });
    await reader.connect();
    await holding.connect();
    try {
      const query = (sql: string) => reader.query(sql).then((result) => result.rows);
      expect(await sealerLockHolder(query)).toBeNull();
      const [{ pid }] = (await holding.query('SELECT pg_backend_pid() AS pid')).rows as { pid: number }[];
      await holding.query(`BEGIN; SELECT pg_sleep(0.3); SELECT pg_advisory_xact_lock(${SEALER_LOCK})`);
      const holder = await sealerLockHolder(query);
      await holding.query('COMMIT');
      expect(holder).toMatchObject({ pid, transaction: expect.stringMatching(/^\d+\/\d+$/) });
      expect(holder?.heldMs).toBeGreaterThanOrEqual(300);
      expect(await sealerLockHolder(query)).toBeNull();
    } finally {
      await holding.end();
      await reader.end();
    }
  }, 60_000);
});
