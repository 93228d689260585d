import { type INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { SEALER_LOCK } from '../src/audit/integrity/seal-store';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Probe (attacker A6): docs/RUNBOOK.md says AUDIT_SEALER_BUSY means "another session has held the
// sealer's lock for over 10 minutes" (CHANGELOG: "once its lock has been found taken for over
// max(10 min, ...)"), and tells the operator to pg_terminate_backend it. The watch only remembers
// when it first found the lock taken and forgets it only when it finds the lock free: a second
// instance whose attempts each land while the first one seals (a catch-up, one seal after
// another) reports it although no session held the lock for more than an instant. Only Date is
// faked here: the 10 minutes pass between three attempts, each of which finds the lock taken for
// a moment by another session.
const MINUTE = 60_000;

describe('probe: AUDIT_SEALER_BUSY while no session holds the lock for long', () => {
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

  it('three attempts 6 minutes apart, each meeting another sealer for an instant, report no AUDIT_SEALER_BUSY', async () => {
    stderr = new StderrCapture();
    // Date only, moving with the real clock (the sealer's watch takes Date.now when it is made).
    jest.useFakeTimers({
      advanceTimers: true,
      doNotFake: [
        'nextTick',
        'setImmediate',
        'clearImmediate',
        'setTimeout',
        'clearTimeout',
        'setInterval',
        'clearInterval',
        'queueMicrotask',
        'hrtime',
        'performance',
      ],
    });
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
});
