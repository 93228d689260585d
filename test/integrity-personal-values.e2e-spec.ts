import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { readManifest } from '../src/audit/integrity/seal';
import { eventually } from './support/app';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/INTEGRITY.md: "a superuser | changes or deletes a row not sealed yet | a change: entry key",
// and "The sealer seals only authentic rows". With `privacy` on (row encoding version 2) the entry
// code covers the commitments, not the actor columns or `personal`: the sealer also checks each
// personal value against its commitment, and a row whose actor was rewritten before its seal is
// never sealed and is reported forged.
describe('the sealer and personal values rewritten before the seal', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = await startSealingApp(db.url(), {
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    });
    await app.get(AuditSealer).sealNow();
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('never seals it, and reports it forged', async () => {
    await app
      .get(AuditService)
      .log({ action: 'payment_approved', entityType: 'Payment', entityId: 'pay-1', userId: 'alice', ip: '192.0.2.5' });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'pay-1'`)).length === 1);
    const [{ id }] = await db.query<{ id: string }>(`SELECT id::text AS id FROM audit_log WHERE entity_id = 'pay-1'`);
    const client = new Client({ connectionString: db.url() });
    await client.connect();
    try {
      await client.query('SET session_replication_role = replica');
      await client.query(`UPDATE audit_log SET user_id = 'mallory', ip = '198.51.100.7' WHERE id = $1`, [id]);
    } finally {
      await client.end();
    }

    await app.get(AuditSealer).sealNow();

    const seals = await db.query<{ manifest: Buffer }>('SELECT manifest FROM audit_seal');
    const sealedIds = seals.flatMap((seal) => [...readManifest(seal.manifest).keys()]);
    const forged = stderr.of(AUDIT_EVENTS.forged).map((line) => String(line.auditId));
    // audit-verify names it twice: a personal value "changed, not erased", and a row in a seal's range left out of it.
    expect((await verify(db.url(), '--entry-key', entryKey)).anomalies).toEqual([
      `ANOMALY row_personal_changed row ${id}`,
      `ANOMALY row_forged row ${id}`,
    ]);
    expect({ sealed: sealedIds.includes(id), forged: forged.includes(id) }).toEqual({ sealed: false, forged: true });
  }, 60_000);
});
