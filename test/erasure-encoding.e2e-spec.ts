import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../src/audit';
import { AuditEntryNormalizer, type AuditEntry, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert, buildAuditInsertText } from '../src/audit/audit-insert-sql';
import { entrySigner, judgeEntry, resolveEntryKeys } from '../src/audit/integrity/entry-auth';
import { ENTRY_DIGEST_SQL, entryDigest } from '../src/audit/integrity/entry-encoding';
import { LEAF_FIELDS, LEAF_SQL, leafHash, SEALED_COLUMNS_SQL, type SealedRow } from '../src/audit/integrity/row-encoding';
import { personalSplitter } from '../src/audit/privacy/personal-values';
import { resolvePrivacyOptions } from '../src/audit/privacy/privacy-options';
import { TestPostgres } from './support/postgres';

// Row encoding version 2 (personal-data commitments): the entry digest made at birth equals the
// one PostgreSQL computes from the stored row, and the seal's leaf computed here equals the
// server's, for every entry the module can make; rows of version 1 beside them keep theirs.
describe('row encoding version 2, computed at birth and by PostgreSQL', () => {
  let db: TestPostgres;
  const keys = resolveEntryKeys([{ id: 'k1', secret: randomBytes(32).toString('base64') }]);
  const privacy = resolvePrivacyOptions({ personalData: ['changes.body.email', 'changes.entities[].fields.email', 'metadata.ip'] });
  const v2 = new AuditEntryNormalizer(['password'], 64 * 1024, entrySigner(keys), personalSplitter(privacy));
  const v1 = new AuditEntryNormalizer(['password'], 64 * 1024, entrySigner(keys));

  beforeAll(async () => {
    db = await TestPostgres.start();
    const migrator = new DataSource({ type: 'postgres', url: db.url(), migrations: [...AUDIT_MIGRATIONS] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
  }, 60_000);

  afterAll(() => db?.stop());

  /** Inserts the records (as the writer or as record() does) and returns the rows whose digest, code or leaf disagree. */
  async function disagreements(records: AuditRecord[], asText: boolean): Promise<string[]> {
    if (asText) await db.query(buildAuditInsertText('audit_log', records));
    else {
      const { sql, parameters } = buildAuditInsert('audit_log', records);
      await db.query(sql, parameters);
    }
    const rows = await db.query<{ row: SealedRow; tx: string; auth_code: string; digest: Buffer; leaf: Buffer }>(
      `SELECT ARRAY[${SEALED_COLUMNS_SQL.replace(/ AS c\d+/g, '')}] AS row, l.tx::text AS tx, l.auth_code, ${ENTRY_DIGEST_SQL} AS digest, ${LEAF_SQL} AS leaf
       FROM audit_log AS l, ${LEAF_FIELDS} WHERE l.id = ANY($1::uuid[])`,
      [records.map((r) => r.id)],
    );
    const byId = new Map(rows.map((row) => [row.row[0], row]));
    return records.flatMap((record) => {
      const row = byId.get(record.id);
      if (!row) return [`${record.id} missing`];
      const problems: string[] = [];
      if (!row.digest.equals(entryDigest(record))) problems.push('digest');
      if (judgeEntry({ tx: BigInt(row.tx), code: row.auth_code, digest: row.digest }, 0n, keys).kind !== 'authentic') problems.push('code');
      if (!row.leaf.equals(leafHash(row.row))) problems.push('leaf');
      if ((record.commitments !== undefined) !== (row.row[14] !== null)) problems.push('version');
      return problems.length ? [`${record.id}: ${problems.join(', ')}`] : [];
    });
  }

  it('agrees on entries with personal values in every place, and on version-1 rows beside them', async () => {
    const entries: AuditEntry[] = [
      { action: 'a' },
      { action: 'b', userId: 'u-1', ip: '::1', userAgent: 'Grüße "quoted" \\ 👩‍👩‍👧', changes: { body: { email: 'a@b.c', n: 1e21 } } },
      {
        action: 'c',
        changes: { entities: [{ fields: { email: 'x@y.z', big: 1.5e-7 } }, { fields: {} }, 'not an object'] },
        metadata: { ip: 12 },
      },
      { action: 'd', userId: 10n ** 20n, changes: { body: { email: { nested: ['e', null] } } }, metadata: 'a string' },
      { action: 'e', changes: { body: 'not an object' }, metadata: [{ ip: 'in an array: not a path' }] },
      { action: 'f', changes: { body: { email: 'y'.repeat(70_000) } } },
    ];
    for (const asText of [false, true]) {
      const records = [...entries.map((e) => v2.normalize(e).record), ...entries.map((e) => v1.normalize(e).record)];
      expect(await disagreements(records, asText)).toEqual([]);
    }
  }, 30_000);

  it('agrees on arbitrary entries (property)', async () => {
    const text = fc.option(fc.string({ unit: 'grapheme', maxLength: 30 }), { nil: null });
    const entry = fc.record({
      action: fc.string({ minLength: 1, maxLength: 20 }),
      entityType: text,
      entityId: fc.oneof(text, fc.integer()),
      userId: fc.oneof(text, fc.integer()),
      ip: text,
      userAgent: fc.option(fc.string({ unit: 'binary', maxLength: 30 }), { nil: null }),
      changes: fc.oneof(
        fc.jsonValue({ maxDepth: 3 }),
        fc.record({ body: fc.record({ email: fc.jsonValue({ maxDepth: 2 }), other: fc.jsonValue({ maxDepth: 1 }) }) }),
        fc.record({
          entities: fc.array(fc.record({ fields: fc.dictionary(fc.constantFrom('email', 'name'), fc.jsonValue({ maxDepth: 1 })) })),
        }),
      ),
      metadata: fc.oneof(fc.constant(undefined), fc.record({ ip: fc.jsonValue({ maxDepth: 1 }) }), fc.jsonValue({ maxDepth: 2 })),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 15 }), fc.boolean(), async (batch, asText) => {
        expect(
          await disagreements(
            batch.map((e) => v2.normalize(e).record),
            asText,
          ),
        ).toEqual([]);
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
