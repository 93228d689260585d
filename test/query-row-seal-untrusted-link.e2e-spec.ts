import { type INestApplication } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { type Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { AuditSealer, AuditService } from '../src/audit';
import { LEAF_FIELDS, LEAF_SQL } from '../src/audit/integrity/row-encoding';
import { keyIdOf } from '../src/audit/integrity/seal';
import { eventually } from './support/app';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';
import { appendLink } from './support/seal-links';
import { StderrCapture } from './support/stderr';

interface RowRead {
  items: { id: string; seal?: { state: string; seq?: number } }[];
}

// Without `integrity.sealerDatabaseUrl` (the default), the application's role holds INSERT on
// audit_log and audit_seal (INTEGRITY.md, Roles), and the link trigger cannot check a signature.
// So that role alone (a leaked DATABASE_URL, no superuser) inserts a row that never passed through
// the module, then appends a link with a made-up signature whose manifest names it: the sealer
// stops at the link and audit-verify names it, and the row read (docs/VIEWER.md) checks the seal
// it relies on against the signing key, so it does not call the row `sealed` either.
describe('a forged row named by a link the app role appended, on the read side', () => {
  const keys = sealingKeys();
  const secret = randomBytes(32).toString('base64');
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;

  const read = async (id: string) =>
    (await request(app.getHttpServer()).get(`/audit/rows/${id}`).set('x-auditor', 'yes').expect(200)).body as RowRead;
  const asAppRole = async <T>(work: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: db.url('postgres', 'app_role', 'app-role-pw') });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = (await startSealingApp(db.url(), {
      http: { guard: AuditorHeaderGuard },
      integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret }] },
    })) as INestApplication<Server>;
    // The grants of one role for the app and the sealer (INTEGRITY.md, Roles, without sealerDatabaseUrl).
    await db.query(`CREATE ROLE app_role LOGIN PASSWORD 'app-role-pw'`);
    await db.query(`GRANT INSERT, SELECT ON audit_log, audit_seal TO app_role`);
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('does not read a row the module never wrote as sealed, whatever link the app role appended', async () => {
    await app.get(AuditService).log({ action: 'payment_approved', entityType: 'Payment', entityId: 'pay-genuine', userId: 'alice' });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'pay-genuine'`)).length === 1);
    await app.get(AuditSealer).sealNow();

    const forgedId = randomUUID();
    const forgedSeq = await asAppRole(async (attacker) => {
      await attacker.query(
        `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome)
         VALUES ($1::uuid, now(), 'payment_approved', 'Payment', 'pay-forged', 'mallory', 'success')`,
        [forgedId],
      );
      const [row] = (
        await attacker.query<{ tx: string; leaf: Buffer }>(
          `SELECT l.tx::text AS tx, ${LEAF_SQL} AS leaf FROM audit_log AS l, ${LEAF_FIELDS} WHERE l.id = $1::uuid`,
          [forgedId],
        )
      ).rows;
      return appendLink(attacker, () => ({
        lastTx: row.tx,
        lastId: forgedId,
        horizon: String(BigInt(row.tx) + 1n),
        rowCount: 1,
        root: row.leaf,
        manifest: Buffer.concat([Buffer.from(forgedId.replaceAll('-', ''), 'hex'), row.leaf.subarray(0, 8)]),
        keyId: keyIdOf(keys.publicKey),
        signature: randomBytes(64),
      }));
    });

    // The trail's proof sees through it.
    const report = await verify(db.url(), `--public-key=${keys.publicPem}`, '--entry-key', `k1:${secret}`);
    expect(report.out).toContain(`ANOMALY seal_signature_invalid seal ${forgedSeq}: the signature does not verify`);

    const [item] = (await read(forgedId)).items;
    expect(item.seal?.state).not.toBe('sealed');
  }, 60_000);
});
