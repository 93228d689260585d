import { randomBytes } from 'node:crypto';
import { AuditSealer, AuditService } from '../src/audit';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// ATTACK (helper I): the threat model of INTEGRITY.md promises, for "a superuser | changes or
// deletes a row not sealed yet", "a change: entry key (the code no longer matches)". The code does
// not cover `recorded_at` (nor `tx`), so a superuser who backdates an unsealed row's `recorded_at`
// (triggers off) has the changed row sealed with the genuine key: nothing ever names it.
describe('attack: a change to a column the entry code does not cover, before sealing', () => {
  let db: TestPostgres;
  const secret = randomBytes(32).toString('base64');

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('trail');
  }, 60_000);

  afterAll(() => db?.stop());

  it('a superuser backdates recorded_at of a row not sealed yet: the sealer or audit-verify names it', async () => {
    const stderr = new StderrCapture();
    try {
      const app = await startSealingApp(db.url('trail'), { integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret }] } });
      try {
        await app.get(AuditSealer).sealNow();
        await app.get(AuditService).log({ action: 'nda_deleted', entityType: 'NDA', entityId: 'n-1', userId: 'alice' });
        const [{ id }] = await db.query<{ id: string }>(`SELECT id::text AS id FROM audit_log`, [], 'trail');
        await db.query(
          `ALTER TABLE audit_log DISABLE TRIGGER USER;
           UPDATE audit_log SET recorded_at = '2020-01-01T00:00:00Z' WHERE id = '${id}';
           ALTER TABLE audit_log ENABLE TRIGGER USER`,
          [],
          'trail',
        );
        await app.get(AuditSealer).sealNow();
        const result = await verify(db.url('trail'), '--entry-key', `k1:${secret}`);
        expect({ anomalies: result.anomalies.length > 0, code: result.code }).toEqual({ anomalies: true, code: 1 });
      } finally {
        await app.close();
      }
    } finally {
      stderr.restore();
    }
  }, 90_000);
});
