import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { readManifest } from '../src/audit/integrity/seal';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/INTEGRITY.md, "The sealer seals only authentic rows", with `privacy` on: a superuser who
// rewrites the actor of a row not sealed yet AND removes what vouches for it (`commitments` and
// `personal` set to NULL, so that the row looks written without privacy, with nothing to check
// the actor against) must still not get the row sealed.
describe('a privacy row made to look like a row without commitments before its seal', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = await startSealingApp(db.url(), {
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: randomBytes(32).toString('base64') }] },
    });
    await app.get(AuditSealer).sealNow();
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it.each([
    ['commitments and personal', `commitments = NULL, personal = NULL`],
    ['commitments only', `commitments = NULL`],
  ])(
    'is never sealed with %s removed and its actor rewritten',
    async (what, set) => {
      const entityId = `pay-${what.replaceAll(' ', '-')}`;
      await app.get(AuditService).log({
        action: 'payment_approved',
        entityType: 'Payment',
        entityId,
        userId: 'alice',
        changes: { body: { email: 'a@example.com' } },
      });
      await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = $1`, [entityId])).length === 1);
      const [{ id }] = await db.query<{ id: string }>(`SELECT id::text AS id FROM audit_log WHERE entity_id = $1`, [entityId]);
      const client = new Client({ connectionString: db.url() });
      await client.connect();
      try {
        await client.query('SET session_replication_role = replica');
        await client.query(`UPDATE audit_log SET user_id = 'mallory', ${set} WHERE id = $1`, [id]);
      } finally {
        await client.end();
      }

      await app.get(AuditSealer).sealNow();

      const seals = await db.query<{ manifest: Buffer }>('SELECT manifest FROM audit_seal');
      const sealedIds = seals.flatMap((seal) => [...readManifest(seal.manifest).keys()]);
      const forged = stderr.of(AUDIT_EVENTS.forged).map((line) => String(line.auditId));
      expect({ sealed: sealedIds.includes(id), forged: forged.includes(id) }).toEqual({ sealed: false, forged: true });
    },
    60_000,
  );
});
