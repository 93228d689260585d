import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/CONFIGURATION.md, `maxEntryBytes`: "larger entries have `changes`/`metadata` replaced by a
// `{ _truncated, originalBytes, preview }` marker"; DESIGN.md 7: "An oversized entry is truncated
// with a marker". With `privacy` on, the values of the `personalData` paths are taken out of
// `changes` and `metadata` into `personal` before the cap: when they are what makes the entry too
// large, both payloads become markers without preview (a preview could hold a personal value) and
// only the actor's values are kept apart, so that the ring, the writer, the row and the spool line
// stay within the bound.
describe('maxEntryBytes with personal values kept apart', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  const maxEntryBytes = 4096;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = await startSealingApp(db.url(), {
      maxEntryBytes,
      privacy: { personalData: ['changes.body.email', 'metadata.note'] },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('a stored entry is not many times maxEntryBytes', async () => {
    const quotes = '"'.repeat(1_000_000);
    await app.get(AuditService).log({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: 'huge',
      userId: 'alice',
      changes: { body: { email: quotes } },
      metadata: { note: quotes },
    });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'huge'`)).length === 1);
    const [row] = await db.query<{ bytes: number }>(
      `SELECT (coalesce(octet_length(changes::text), 0) + coalesce(octet_length(metadata::text), 0)
        + coalesce(octet_length(personal), 0) + coalesce(octet_length(commitments), 0))::int AS bytes
       FROM audit_log WHERE entity_id = 'huge'`,
    );
    // The fixed fields take at most ~1.3 KiB (audit-entry.ts): twice the cap is generous.
    expect(row.bytes).toBeLessThanOrEqual(2 * maxEntryBytes);
    const [stored] = await db.query<{ changes: unknown; metadata: unknown; personal: string }>(
      `SELECT changes, metadata, personal FROM audit_log WHERE entity_id = 'huge'`,
    );
    expect(stored.changes).toEqual({ _truncated: true, originalBytes: expect.any(Number) as unknown });
    expect(stored.metadata).toEqual({ _truncated: true, originalBytes: expect.any(Number) as unknown });
    expect(JSON.parse(stored.personal)).toMatchObject({ values: [] });
    expect((await verify(db.url(), '--entry-key', entryKey)).anomalies).toEqual([]);
  }, 60_000);
});
