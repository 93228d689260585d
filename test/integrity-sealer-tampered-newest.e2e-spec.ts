import { AUDIT_EVENTS, AuditSealer, AuditService, DbHealthIndicator } from '../src/audit';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The sealer reads the newest seal with audit-verify's SQL. A newest seal a superuser changed (its
// sealed_at set to infinity, its last row moved) cannot be continued: the sealer says so once,
// as a cut chain (audit.chain_broken), and never fails in a loop.
describe('the sealer on a newest seal changed by a superuser', () => {
  let db: TestPostgres;
  let copies = 0;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('base');
    const stderr = new StderrCapture();
    try {
      const app = await startSealingApp(db.url('base'), { integrity: { intervalMs: 3_600_000 } });
      try {
        for (let round = 0; round < 2; round++) {
          await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: `n-${round}` });
          await app.get(AuditSealer).sealNow();
        }
      } finally {
        await app.close();
      }
    } finally {
      stderr.restore();
    }
  }, 90_000);

  afterAll(() => db?.stop());

  it.each([
    ['sealed_at infinity', `sealed_at = 'infinity'`, /not a finite time/],
    ['sealed_at -infinity', `sealed_at = '-infinity'`, /not a finite time/],
    ['last_id moved', `last_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff'`, /does not match its own hash/],
  ])(
    '%s: one audit.chain_broken, no seal_failed, nothing sealed',
    async (_, change, detail) => {
      const name = `newest${++copies}`;
      await db.query(`CREATE DATABASE ${name} TEMPLATE base`);
      await db.query(
        `ALTER TABLE audit_seal DISABLE TRIGGER USER; UPDATE audit_seal SET ${change} WHERE seq = (SELECT max(seq) FROM audit_seal); ALTER TABLE audit_seal ENABLE TRIGGER USER`,
        [],
        name,
      );
      const stderr = new StderrCapture();
      const app = await startSealingApp(db.url(name), { integrity: { intervalMs: 3_600_000 } });
      try {
        await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'later' });
        for (let i = 0; i < 3; i++) await app.get(AuditSealer).sealNow();
        const health = app.get(DbHealthIndicator).isHealthy().audit_db as unknown as {
          integrity: { failures: number; sealed: number; chainBroken: { detail: string } | null };
        };
        expect({
          broken: stderr.of(AUDIT_EVENTS.chainBroken).map((line) => String(line.detail)),
          failed: stderr.of(AUDIT_EVENTS.sealFailed).length,
          sealed: stderr.of(AUDIT_EVENTS.sealed).length,
          health: { failures: health.integrity.failures, sealed: health.integrity.sealed },
        }).toEqual({ broken: [expect.stringMatching(detail)], failed: 0, sealed: 0, health: { failures: 0, sealed: 0 } });
        expect(health.integrity.chainBroken?.detail).toMatch(detail);
      } finally {
        await app.close();
        stderr.restore();
      }
    },
    30_000,
  );
});
