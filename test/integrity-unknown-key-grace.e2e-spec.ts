import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { SEALER_LOCK } from '../src/audit/integrity/seal-store';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/INTEGRITY.md, "Keys and rotation": a forger's made-up key id (any role with INSERT can
// write one) stops sealing for the grace at most. Several instances each run a sealer, taking the
// sealer's lock in turns, and instances restart: the wait is counted from the row's own
// `recorded_at` (set by the database) and from the sealer's first wait, which an attempt that
// finds the lock busy does not start over. A row dated ahead of the database's clock (its
// `recorded_at` set by hand to stretch the wait) is forged at once.
describe('integrity.unknownKeyGraceMs against sealers taking turns and restarting', () => {
  let db: TestPostgres;
  const k1 = { id: 'k1', secret: randomBytes(32).toString('base64') };
  const graceMs = 3_000;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('busy');
    await db.createDatabase('restart');
    await db.createDatabase('control');
    await db.createDatabase('ahead');
  }, 60_000);

  afterAll(() => db?.stop());

  const start = (url: string) =>
    startSealingApp(url, { integrity: { intervalMs: 3_600_000, entryKeys: [k1], unknownKeyGraceMs: graceMs } });
  const plantMadeUpKey = async (database: string, recordedAt = 'now()') => {
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, auth_code, recorded_at)
       VALUES (gen_random_uuid(), now(), 'nda_created', 'NDA', 'made-up', 'success', $1, ${recordedAt})`,
      [`v1:nobody:${'A'.repeat(43)}`],
      database,
    );
  };
  const forgedIds = (stderr: StderrCapture) => stderr.of(AUDIT_EVENTS.forged).map((line) => line.entityId);
  const settle = async (app: INestApplication) => {
    await app.get(AuditSealer).sealNow();
    await app.get(AuditSealer).sealNow();
  };

  it('one sealer alone forges the row once the grace has passed since its first wait', async () => {
    const stderr = new StderrCapture();
    const app = await start(db.url('control'));
    try {
      await settle(app);
      await plantMadeUpKey('control');
      await app.get(AuditSealer).sealNow(); // the first wait
      await sleep(graceMs + 500);
      await app.get(AuditSealer).sealNow();
      expect(forgedIds(stderr)).toEqual(['made-up']);
    } finally {
      await app.close();
      stderr.restore();
    }
  }, 90_000);

  it('an attempt that finds the lock held by another sealer does not restart the grace', async () => {
    const stderr = new StderrCapture();
    const url = db.url('busy');
    const app = await start(url);
    const other = new Client({ connectionString: url });
    try {
      await settle(app);
      await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'before' });
      // Dated 50 s ahead (within the minute a clock may step back): only the sealer's own wait counts.
      await plantMadeUpKey('busy', "now() + interval '50 seconds'");
      await app.get(AuditSealer).sealNow(); // the first wait
      // Another instance's sealer holds the lock while this one's next attempt comes.
      await other.connect();
      await other.query('BEGIN');
      await other.query(`SELECT pg_advisory_xact_lock(${SEALER_LOCK})`);
      await app.get(AuditSealer).sealNow();
      await other.query('COMMIT');
      await sleep(graceMs + 500);
      // Longer than the grace since the first wait: the made-up row is forged and sealing goes on.
      await app.get(AuditSealer).sealNow();
      expect(forgedIds(stderr)).toEqual(['made-up']);
    } finally {
      await other.end().catch(() => undefined);
      await app.close();
      stderr.restore();
    }
  }, 90_000);

  it('a restarted sealer does not restart the grace', async () => {
    const stderr = new StderrCapture();
    const url = db.url('restart');
    const first = await start(url);
    try {
      await settle(first);
      await plantMadeUpKey('restart');
      await first.get(AuditSealer).sealNow(); // the first wait
    } finally {
      await first.close();
    }
    await sleep(graceMs + 500);
    const restarted = await start(url);
    try {
      await restarted.get(AuditSealer).sealNow();
      expect(forgedIds(stderr)).toEqual(['made-up']);
    } finally {
      await restarted.close();
      stderr.restore();
    }
  }, 90_000);

  it('forges at once a row dated ahead of the database clock', async () => {
    const stderr = new StderrCapture();
    const app = await start(db.url('ahead'));
    try {
      await settle(app);
      await plantMadeUpKey('ahead', "now() + interval '1 day'");
      await app.get(AuditSealer).sealNow();
      expect(forgedIds(stderr)).toEqual(['made-up']);
    } finally {
      await app.close();
      stderr.restore();
    }
  }, 90_000);
});
