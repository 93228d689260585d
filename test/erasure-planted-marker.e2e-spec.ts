import { type INestApplication } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { type Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { AuditSealer, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';
import { StderrCapture } from './support/stderr';

interface RowRead {
  items: { id: string; userId: string | null; erasedBy: string | null; seal?: { state: string } }[];
}

// docs/PRIVACY.md: `erasedBy` is "the id of the erasure that took its values (the
// `audit_erasure` entry's entity id), or null", and an erasure answers a row written without
// commitments as `not_erasable`: no erasure ever takes one. A row of a trail without `privacy`
// (row encoding version 1, `commitments` NULL) whose `personal` column a superuser fills with an
// erased marker must not read (or export) as erased, or else audit-verify must name it.
describe('an erased marker planted in a row without commitments', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = (await startSealingApp(db.url(), {
      http: { guard: AuditorHeaderGuard },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    })) as INestApplication<Server>;
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('is named by audit-verify, or read with no erasure', async () => {
    await app.get(AuditService).log({ action: 'payment_approved', entityType: 'Payment', entityId: 'pay-v1', userId: 'alice' });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'pay-v1'`)).length === 1);
    const [{ id }] = await db.query<{ id: string }>(`SELECT id::text AS id FROM audit_log WHERE entity_id = 'pay-v1'`);
    await app.get(AuditSealer).sealNow();
    const madeUp = randomUUID();
    const client = new Client({ connectionString: db.url() });
    await client.connect();
    try {
      await client.query('SET session_replication_role = replica');
      await client.query(`UPDATE audit_log SET personal = $2 WHERE id = $1`, [id, `{"erased":"${madeUp}"}`]);
    } finally {
      await client.end();
    }

    const read = (await request(app.getHttpServer()).get(`/audit/rows/${id}`).set('x-auditor', 'yes').expect(200)).body as RowRead;
    const anomalies = (await verify(db.url(), '--entry-key', entryKey)).anomalies;
    expect({ erasedBy: read.items[0].erasedBy, named: anomalies.some((line) => line.endsWith(id)) }).not.toEqual({
      erasedBy: madeUp,
      named: false,
    });
  }, 60_000);
});
