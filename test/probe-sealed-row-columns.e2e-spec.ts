import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import { type Server } from 'node:http';
import { AuditSealer, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';
import { StderrCapture } from './support/stderr';

// Probe (attacker C): docs/INTEGRITY.md, "Not detected": "Only the columns of the encoding are
// covered (all of today's `audit_log` but `personal`, whose values the commitments cover
// instead)". `auth_code` is not in the row encoding (row-encoding.ts): a superuser can change it
// on a sealed row, and a seal check (audit-verify with the public key, no entry key) says CLEAN,
// and the read side says "sealed".
describe('probe: a sealed row whose auth_code a superuser changed', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = (await startSealingApp(db.url(), {
      http: { guard: AuditorHeaderGuard },
      integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    })) as INestApplication<Server>;
    await app.get(AuditSealer).sealNow();
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('is named by the seals (row_changed), with or without the entry key, and not read as sealed', async () => {
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

    const seals = await verify(db.url(), `--public-key=${keys.publicPem}`);
    const withKey = await verify(db.url(), `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    const read = (await request(app.getHttpServer()).get(`/audit/rows/${rows[0].id}`).set('x-auditor', 'yes').expect(200)).body as {
      items: { seal?: { state: string } }[];
    };
    expect({
      seals: seals.anomalies,
      withKey: withKey.anomalies,
      read: read.items[0].seal?.state,
    }).toEqual({
      seals: rows.map((r) => `ANOMALY row_changed row ${r.id}`).sort(),
      withKey: expect.arrayContaining([expect.stringContaining(rows[0].id), expect.stringContaining(rows[1].id)]) as unknown,
      read: expect.not.stringMatching(/^sealed$/) as unknown,
    });
  }, 60_000);
});
