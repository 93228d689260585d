import { randomBytes } from 'node:crypto';
import { AuditSealer, AuditService } from '../src/audit';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A new row cannot be counted as old by leaving its code empty (INTEGRITY.md): the empty seal that
// records the entry-authentication boundary vouches up to the current horizon, and the sealer
// treats a row after the newest seal whose tx is below that seal's horizon (or missing) as forged,
// as audit-verify does: never sealed as "written before entry authentication".
describe('a forged row without a code, given an old tx, counted as legacy', () => {
  let db: TestPostgres;
  const secret = randomBytes(32).toString('base64');
  const entryKeys = [{ id: 'k1', secret }];
  const FORGED = ['01900000-0000-7000-8000-00000000a001', '01900000-0000-7000-8000-00000000a002'];

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 60_000);

  afterAll(() => db?.stop());

  it.each([
    ['an install that turns entry keys on after legacy rows were sealed', true],
    ['a fresh install with entry keys from the start', false],
  ])(
    '%s: the forged rows are never sealed and verify names them',
    async (_, legacyFirst) => {
      const name = legacyFirst ? 'legacyfirst' : 'fresh';
      await db.createDatabase(name);
      const url = db.url(name);
      if (legacyFirst) {
        const before = await startSealingApp(url, { integrity: { intervalMs: 3_600_000 } });
        try {
          await before.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'legacy-1' });
          await before.get(AuditSealer).sealNow();
        } finally {
          await before.close();
        }
      }
      const stderr = new StderrCapture();
      try {
        const app = await startSealingApp(url, { integrity: { intervalMs: 3_600_000, entryKeys } });
        try {
          // The boundary seal: empty, nothing written since the keys came.
          await app.get(AuditSealer).sealNow();
          const [{ b }] = await db.query<{ b: string }>(
            `SELECT entry_auth_from::text AS b FROM audit_seal ORDER BY seq DESC LIMIT 1`,
            [],
            name,
          );
          // The table's owner (or a superuser) with triggers off: one row without tx, one with a tx just below the boundary.
          await db.query(
            `ALTER TABLE audit_log DISABLE TRIGGER USER;
           INSERT INTO audit_log (id, tx, occurred_at, action, entity_type, entity_id, user_id, outcome)
           VALUES ('${FORGED[0]}', NULL, now(), 'nda_deleted', 'NDA', 'n-1', 'mallory', 'success'),
                  ('${FORGED[1]}', ${BigInt(b) - 1n}, now(), 'nda_deleted', 'NDA', 'n-2', 'mallory', 'success');
           ALTER TABLE audit_log ENABLE TRIGGER USER`,
            [],
            name,
          );
          await app.get(AuditSealer).sealNow();
        } finally {
          await app.close();
        }
        const sealedForged = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM audit_seal AS s, unnest($1::uuid[]) AS f(id)
         WHERE position(decode(replace(f.id::text, '-', ''), 'hex') IN s.manifest) > 0`,
          [FORGED],
          name,
        );
        const result = await verify(url, '--entry-key', `k1:${secret}`);
        expect({
          sealedForged: sealedForged[0].n,
          anomalies: result.anomalies.sort(),
          code: result.code,
        }).toEqual({
          sealedForged: 0,
          anomalies: FORGED.map((id) => `ANOMALY row_forged row ${id}`),
          code: 1,
        });
      } finally {
        stderr.restore();
      }
    },
    90_000,
  );
});
