import { randomBytes } from 'node:crypto';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Rows from before the migration (no tx) and rows after it, sealed by a first sealer: every one is
// sealed, none is taken for a row given an old tx (the sealer's "older than the horizon" rule),
// whether the rows without tx fill several seals or share one with the rows that have a tx.
describe('a trail with rows from before the migration, sealed for the first time', () => {
  let db: TestPostgres;
  const secret = randomBytes(32).toString('base64');

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 60_000);

  afterAll(() => db?.stop());

  it.each([
    ['without entry keys, rows without tx over several seals', 'severalkeyless', 100, false],
    ['without entry keys, all in one seal', 'onekeyless', 1000, false],
    ['with entry keys, rows without tx over several seals', 'severalkeyed', 100, true],
    ['with entry keys, all in one seal', 'onekeyed', 1000, true],
  ])(
    '%s: all sealed, none forged, verify clean',
    async (_, name, maxRowsPerSeal, keyed) => {
      await db.createDatabase(name);
      const url = db.url(name);
      const entryKeys = keyed ? [{ id: 'k1', secret }] : undefined;
      const stderr = new StderrCapture();
      try {
        // The schema, then rows as a version before the tx column stored them, then rows of today.
        await (await startSealingApp(url, { integrity: { enabled: false } })).close();
        await db.query(
          `ALTER TABLE audit_log DISABLE TRIGGER USER;
           INSERT INTO audit_log (id, tx, occurred_at, action, entity_type, entity_id, user_id, outcome)
           SELECT gen_random_uuid(), NULL, now(), 'nda_created', 'NDA', 'old-' || i, 'alice', 'success' FROM generate_series(1, 250) AS i;
           ALTER TABLE audit_log ENABLE TRIGGER USER`,
          [],
          name,
        );
        const writer = await startSealingApp(url, { integrity: { enabled: false } });
        try {
          for (let i = 1; i <= 3; i++)
            await writer.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: `new-${i}` });
        } finally {
          await writer.close();
        }
        const app = await startSealingApp(url, { integrity: { intervalMs: 3_600_000, maxRowsPerSeal, entryKeys } });
        try {
          await app.get(AuditSealer).sealNow();
          await app.get(AuditSealer).sealNow();
        } finally {
          await app.close();
        }
        const [{ unsealed }] = await db.query<{ unsealed: number }>(
          `SELECT count(*)::int AS unsealed FROM audit_log AS l
           WHERE NOT EXISTS (SELECT 1 FROM audit_seal AS s WHERE position(decode(replace(l.id::text, '-', ''), 'hex') IN s.manifest) > 0)`,
          [],
          name,
        );
        const result = await verify(url, ...(keyed ? ['--entry-key', `k1:${secret}`] : []));
        expect({ unsealed, forgedLines: stderr.of(AUDIT_EVENTS.forged).length, anomalies: result.anomalies, code: result.code }).toEqual({
          unsealed: 0,
          forgedLines: 0,
          anomalies: [],
          code: 0,
        });
      } finally {
        stderr.restore();
      }
    },
    90_000,
  );
});
