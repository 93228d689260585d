import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { parseEntryKeys, resolveEntryKeys } from '../src/audit/integrity/entry-auth';
import { runErase } from '../src/audit/privacy/erase-command';
import { personalSplitter } from '../src/audit/privacy/personal-values';
import { resolvePrivacyOptions } from '../src/audit/privacy/privacy-options';
import { heldBackByErasure } from '../src/audit/privacy/replay-guard';
import { TestPostgres } from './support/postgres';

const PSEUDONYM_KEY = 'a-pseudonym-key-of-at-least-32-characters';

// The replay guard with a key other than the one an erasure named its subject with: an erasure
// entry records a fingerprint of its key (never the key); replay matches subjects only under the
// key whose fingerprint it finds, and holds back, as without a key, what it cannot tell.
describe('audit:replay guard and the key of each erasure', () => {
  let db: TestPostgres;
  let client: Client;
  const normalizer = new AuditEntryNormalizer(
    [],
    64 * 1024,
    undefined,
    personalSplitter(resolvePrivacyOptions({ personalData: ['changes.email'] })),
  );
  const record = (userId: string, n: number): AuditRecord =>
    normalizer.normalize({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: `p-${n}`,
      userId,
      changes: { email: `${userId}@x` },
    }).record;
  const pseudonymKey = resolvePrivacyOptions({ pseudonymKey: PSEUDONYM_KEY }).pseudonymKey!;
  const entryKeys = resolveEntryKeys(parseEntryKeys(`k1:${randomBytes(32).toString('base64')}`)).map((k) => k.key);
  // Made before the erasure: lost from the table since, found in a spool or an export.
  let [lost, other, another] = [] as AuditRecord[];
  const held = async (records: AuditRecord[], keys: typeof entryKeys) =>
    (await heldBackByErasure(async (text, p) => (await client.query(text, p)).rows, '"audit_log"', records, keys)).map((h) => h.id);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('audit');
    const migrator = new DataSource({ type: 'postgres', url: db.url('audit'), migrations: [...AUDIT_MIGRATIONS] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    client = new Client({ connectionString: db.url('audit') });
    await client.connect();
    const stored = record('u-9', 1);
    [lost, other, another] = [record('u-9', 2), record('u-8', 3), record('u-7', 4)];
    const { sql, parameters } = buildAuditInsert('audit_log', [stored]);
    await db.query(sql, parameters, 'audit');
    const out: string[] = [];
    const code = await runErase(
      ['--url', db.url('audit'), '--user', 'u-9'],
      { AUDIT_PRIVACY_PSEUDONYM_KEY: PSEUDONYM_KEY },
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    expect([code, out.at(-1)]).toEqual([0, expect.stringMatching(/^audit-erase: 1 rows erased/)]);
  }, 90_000);

  afterAll(async () => {
    await client?.end();
    await db?.stop();
  });

  it('records a fingerprint of the key in the erasure entry, never the key', async () => {
    const { rows } = await client.query<{ erasure: Record<string, unknown> }>(
      `SELECT changes -> 'erasure' AS erasure FROM audit_log WHERE action = 'audit_erasure'`,
    );
    expect(rows).toEqual([{ erasure: expect.objectContaining({ keyFingerprint: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/) }) }]);
    expect(JSON.stringify(rows)).not.toContain(PSEUDONYM_KEY);
    expect(JSON.stringify(rows)).not.toContain(pseudonymKey.export().toString('base64'));
  });

  it('holds back the lost entry of a user erased since when replay holds only the entry keys', async () => {
    expect(await held([lost, other], entryKeys)).toEqual([lost.id, other.id]);
  });

  it('holds back only the erased subject when replay holds the key the erasure used, beside others', async () => {
    expect(await held([lost, other], [...entryKeys, pseudonymKey])).toEqual([lost.id]);
  });

  it('reads every erasure when a record bears a time PostgreSQL cannot take, and fails not', async () => {
    // An id that is no UUIDv7 (a caller's own) tells no time: the record's time is its occurredAt alone.
    const far = { ...record('u-9', 7), id: randomUUID(), occurredAt: '+200000-01-01T00:00:00.000Z' };
    expect(await held([far, lost], [pseudonymKey])).toEqual([lost.id]);
  });

  it('cannot tell whose under an erasure entry without a fingerprint (written before): holds back', async () => {
    await client.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, changes)
       VALUES (gen_random_uuid(), now(), 'audit_erasure', 'audit_erasure', 'e-old', 'success', $1)`,
      [JSON.stringify({ erasure: { id: 'e-old', subject: 'p1:someone', by: 'user', rows: 0 } })],
    );
    expect(await held([another], [pseudonymKey])).toEqual([another.id]);
  });
});
