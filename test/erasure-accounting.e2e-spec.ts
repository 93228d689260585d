import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditSealer, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { sealingKeys, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';

// Each erasure adds up: the rows that carry its marker are exactly as many as its audit_erasure
// entry counts, and only an authentic entry counts. An erasure undone (values and salt written
// back from a copy) and an erasure "recorded" by an entry the module never wrote are both named.
describe('erasures are accounted for by authentic entries, exactly', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let url: string;
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const writer = { user: 'audit_writer', password: 'writer-pw' };

  const sql = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) => db.query<T>(text, params, 'audit');
  const check = (...args: string[]) => verify(url, `--public-key=${keys.publicPem}`, '--entry-key', entryKey, ...args);
  const logFor = async (userId: string, entityId: string) => {
    await app.get(AuditService).log({ action: 'profile_updated', entityType: 'Profile', entityId, userId, ip: '192.0.2.5' });
    await eventually(async () => (await sql(`SELECT 1 FROM audit_log WHERE entity_id = $1`, [entityId])).length === 1);
  };
  /** As a superuser with the triggers off: a change the database itself cannot refuse. */
  const tamper = async (text: string, params: unknown[]) => {
    const client = new Client({ connectionString: db.url('audit') });
    await client.connect();
    try {
      await client.query('SET session_replication_role = replica');
      await client.query(text, params);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    url = await createAuditDatabase(db, 'audit', writer);
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO ${writer.user}`, [], 'audit');
    app = await startErasureApp(url, {
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('names the entry of an erasure undone by writing the values and the salt back, and only when every row is checked', async () => {
    await logFor('u-5', 'p-5');
    const [copy] = await sql<{ id: string; user_id: string; ip: string; personal: string }>(
      `SELECT id::text AS id, user_id, ip, personal FROM audit_log WHERE entity_id = 'p-5'`,
    );
    const { erased, entryId } = await app.get(AuditService).erase({ userId: 'u-5', requestedBy: 'dpo' });
    expect(erased).toBe(1);
    await app.get(AuditSealer).sealNow();
    expect((await check()).code).toBe(0);
    await tamper(`UPDATE audit_log SET user_id = $2, ip = $3, personal = $4 WHERE id = $1`, [
      copy.id,
      copy.user_id,
      copy.ip,
      copy.personal,
    ]);
    const report = await check();
    // The row holds its values again: named as not erased (its subject's erasure began after its
    // transaction), and the erasure's entry as counting a row no longer erased.
    expect({ code: report.code, anomalies: report.anomalies }).toEqual({
      code: 1,
      anomalies: [`ANOMALY row_not_erased row ${copy.id}`, `ANOMALY row_erased_unaccounted row ${entryId}`],
    });
    // A check of some seals only sees some erased rows: it cannot tell an erasure short of rows.
    const since = new Date(Date.now() + 60_000).toISOString();
    expect((await check('--from', since)).anomalies).toEqual([]);
    await tamper(`UPDATE audit_log SET user_id = '[ERASED]', ip = '[ERASED]', personal = $2 WHERE id = $1`, [
      copy.id,
      JSON.stringify({
        erased: (
          JSON.parse((await sql<{ c: string }>(`SELECT changes::text AS c FROM audit_log WHERE id = $1`, [entryId]))[0].c) as {
            erasure: { id: string };
          }
        ).erasure.id,
      }),
    ]);
    expect((await check()).code).toBe(0);
  }, 60_000);

  it('names rows erased under an erasure that only an entry the module never wrote records', async () => {
    await logFor('u-4', 'p-4');
    const [victim] = await sql<{ id: string }>(`SELECT id::text AS id FROM audit_log WHERE entity_id = 'p-4'`);
    const erasureId = '01930000-0000-7000-8000-00000000e001';
    const attacker = new Client({ connectionString: url });
    await attacker.connect();
    let forged: string;
    try {
      await attacker.query('BEGIN');
      const { rows } = await attacker.query<{ id: string }>(
        `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, changes)
         VALUES (gen_random_uuid(), now(), 'audit_erasure', 'audit_erasure', $1, 'success', $2) RETURNING id::text AS id`,
        [erasureId, JSON.stringify({ erasure: { id: erasureId, subject: 'p1:none', by: 'user', rows: 1 } })],
      );
      forged = rows[0].id;
      await attacker.query(`SELECT * FROM audit_log_erase('u-4', NULL, NULL, $1, false)`, [erasureId]);
      await attacker.query('COMMIT');
    } finally {
      await attacker.end();
    }
    await app.get(AuditSealer).sealNow();
    const report = await check();
    expect(report.anomalies).toEqual(
      expect.arrayContaining([`ANOMALY row_forged row ${forged}`, `ANOMALY row_erased_unaccounted row ${victim.id}`]),
    );
  }, 60_000);
});
