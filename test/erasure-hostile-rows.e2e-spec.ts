import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { AuditQueryService, AuditSealer, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { sealingKeys, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { startQueryApp } from './support/query-app';

// Rows whose personal columns the module did not write: planted by the application's own role
// (which holds INSERT), or rewritten by a superuser with the triggers off. The verifier names each
// of them and goes on; the read side shows the rest of the trail and never lets a planted path
// reach anything but the row's own copy of its payload.
describe('rows with personal columns the module did not write', () => {
  let db: TestPostgres;
  let url: string;
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const writer = { user: 'audit_writer', password: 'writer-pw' };

  const sql = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) => db.query<T>(text, params, 'audit');
  const asWriter = async <T extends Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<T>(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  const check = () => verify(url, `--public-key=${keys.publicPem}`, '--entry-key', entryKey);

  beforeAll(async () => {
    db = await TestPostgres.start();
    url = await createAuditDatabase(db, 'audit', writer);
  }, 90_000);

  afterAll(async () => {
    await db?.stop();
  });

  describe('audit-verify', () => {
    let app: INestApplication;

    beforeAll(async () => {
      app = await startErasureApp(url, {
        privacy: { personalData: ['changes.body.email'] },
        integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
      });
      await app.get(AuditService).log({
        action: 'profile_updated',
        entityType: 'Profile',
        entityId: 'p-1',
        userId: 'u-1',
        changes: { body: { email: 'u-1@example.com' } },
      });
      await eventually(async () => (await sql('SELECT 1 FROM audit_log')).length === 1);
      await app.get(AuditSealer).sealNow();
    }, 60_000);

    afterAll(async () => {
      await app?.close();
    });

    it('names a sealed row whose personal values a superuser replaced by something other than pairs, and exits 1', async () => {
      const [row] = await sql<{ id: string; personal: string }>(`SELECT id::text AS id, personal FROM audit_log WHERE entity_id = 'p-1'`);
      const personal = JSON.parse(row.personal) as { salt: string; values: unknown[] };
      await tamper(db, `UPDATE audit_log SET personal = $2 WHERE id = $1`, [
        row.id,
        JSON.stringify({ salt: personal.salt, values: personal.values.map(() => 7) }),
      ]);
      const report = await check();
      expect({ code: report.code, anomalies: report.anomalies.filter((a) => a.includes(row.id)) }).toEqual({
        code: 1,
        anomalies: [`ANOMALY row_personal_changed row ${row.id}`],
      });
    }, 60_000);

    it.each([
      ['a value that is not a pair', '{"salt":"s","values":[7]}'],
      ['a path that is not a list', '{"salt":"s","values":[["changes.email","\\"x\\""]]}'],
      ['a value that is not JSON text', '{"salt":"s","values":[[["changes","email"],"not json"]]}'],
    ])(
      'names a row the application role planted with %s, and exits 1',
      async (_, personal) => {
        const [{ id }] = await asWriter<{ id: string }>(
          `INSERT INTO audit_log (id, occurred_at, action, outcome, commitments, personal)
         VALUES (gen_random_uuid(), now(), 'profile_viewed', 'success', '[[["changes","email"],"x"]]', $1)
         RETURNING id::text AS id`,
          [personal],
        );
        const report = await check();
        expect(report.code).toBe(1);
        expect(report.anomalies.filter((a) => a.includes(id))).not.toEqual([]);
      },
      60_000,
    );
  });

  describe('reads', () => {
    let app: INestApplication<Server>;
    let planter: Client;
    const plant = (entityId: string, personal: unknown) =>
      planter.query(
        `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, commitments, personal)
         VALUES (gen_random_uuid(), now(), 'nda_viewed', 'NDA', $1, 'success', '[]', $2)`,
        [entityId, JSON.stringify(personal)],
      );

    beforeAll(async () => {
      await db.createDatabase('reads');
      app = await startQueryApp(db.url('reads'));
      await db.query(`GRANT INSERT, SELECT ON audit_log TO ${writer.user}`, [], 'reads');
      planter = new Client({ connectionString: db.url('reads', writer.user, writer.password) });
      await planter.connect();
    }, 60_000);

    afterAll(async () => {
      delete (Object.prototype as Record<string, unknown>).auditPolluted;
      await planter?.end();
      await app?.close();
    });

    it.each([[['__proto__']], [['constructor', 'prototype']]])(
      'never writes through a planted path %j onto the reading process',
      async (steps) => {
        const entityId = `n-${steps.join('-')}`;
        await plant(entityId, { salt: 's', values: [[['changes', ...steps, 'auditPolluted'], 'true']] });
        await app
          .get(AuditQueryService)
          .history('NDA', entityId)
          .catch(() => undefined);
        const polluted = ({} as Record<string, unknown>).auditPolluted;
        delete (Object.prototype as Record<string, unknown>).auditPolluted;
        expect(polluted).toBeUndefined();
      },
    );

    it("answers an entity's history whose rows hold a planted personal value that is not JSON text", async () => {
      await plant('n-text', { salt: 's', values: [[['changes', 'email'], 'not json']] });
      await planter.query(
        `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome) VALUES (gen_random_uuid(), now(), 'nda_created', 'NDA', 'n-text', 'success')`,
      );
      const response = await request(app.getHttpServer()).get('/audit/entities/NDA/n-text').set('x-auditor', 'yes');
      expect(response.status).toBe(200);
      expect(response.body.items.map((e: { action: string }) => e.action).sort()).toEqual(['nda_created', 'nda_viewed']);
    });
  });
});

/** As a superuser with the triggers off: a change the database itself cannot refuse. */
async function tamper(db: TestPostgres, text: string, params: unknown[]): Promise<void> {
  const client = new Client({ connectionString: db.url('audit') });
  await client.connect();
  try {
    await client.query('SET session_replication_role = replica');
    await client.query(text, params);
  } finally {
    await client.end();
  }
}
