import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { type Server } from 'node:http';
import { AuditSealer, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// `auth_code` is not in the row encoding the seals cover (docs/INTEGRITY.md, "Not detected"): a
// code swapped between two sealed rows by a superuser is named by audit-verify with the entry key,
// each row's code no longer matching its content.
describe('entry codes swapped between sealed rows', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = (await startSealingApp(db.url(), {
      integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    })) as INestApplication<Server>;
    await app.get(AuditSealer).sealNow();
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('are named by audit-verify with the entry key', async () => {
    for (const entityId of ['c-1', 'c-2'])
      await app.get(AuditService).log({ action: 'contract_signed', entityType: 'Contract', entityId, userId: 'alice' });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_type = 'Contract'`)).length === 2);
    await app.get(AuditSealer).sealNow();
    const rows = await db.query<{ id: string; auth_code: string }>(
      `SELECT id::text AS id, auth_code FROM audit_log WHERE entity_type = 'Contract' ORDER BY entity_id`,
    );
    expect((await verify(db.url(), `--public-key=${keys.publicPem}`)).code).toBe(0);

    // The codes of the two sealed rows swapped: every other column as it was sealed.
    const client = new Client({ connectionString: db.url() });
    await client.connect();
    try {
      await client.query('SET session_replication_role = replica');
      await client.query(`UPDATE audit_log SET auth_code = $2 WHERE id = $1`, [rows[0].id, rows[1].auth_code]);
      await client.query(`UPDATE audit_log SET auth_code = $2 WHERE id = $1`, [rows[1].id, rows[0].auth_code]);
    } finally {
      await client.end();
    }

    const withKey = await verify(db.url(), `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    expect(withKey.code).toBe(1);
    expect(withKey.anomalies.sort()).toEqual(rows.map((r) => `ANOMALY row_forged row ${r.id}`).sort());
  }, 60_000);
});
