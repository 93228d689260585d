import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../src/audit';
import { AuditEntryNormalizer, type AuditEntry, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { entrySigner, judgeEntry, resolveEntryKeys } from '../src/audit/integrity/entry-auth';
import { ENTRY_DIGEST_SQL, entryDigest } from '../src/audit/integrity/entry-encoding';
import { LEAF_FIELDS } from '../src/audit/integrity/row-encoding';
import { TestPostgres } from './support/postgres';

// An entry's code is made at birth from the entry in memory (entryDigest), and checked later from
// the row PostgreSQL stored (ENTRY_DIGEST_SQL): jsonb re-orders keys and rewrites numbers. The two
// must agree on every entry the module can make, or an honest row would be reported as forged.
describe('the entry digest computed by PostgreSQL from the stored row', () => {
  let db: TestPostgres;
  const keys = resolveEntryKeys([{ id: 'k1', secret: randomBytes(32).toString('base64') }]);
  const normalizer = new AuditEntryNormalizer(['password'], 64 * 1024, entrySigner(keys));

  beforeAll(async () => {
    db = await TestPostgres.start();
    const migrator = new DataSource({ type: 'postgres', url: db.url(), migrations: [...AUDIT_MIGRATIONS] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
  }, 60_000);

  afterAll(() => db?.stop());

  /** Inserts the records and returns, per record, whether the server's digest equals the birth digest and the code verifies. */
  async function roundTrip(records: AuditRecord[]): Promise<{ id: string; same: boolean; verdict: string }[]> {
    const { sql, parameters } = buildAuditInsert('audit_log', records);
    await db.query(sql, parameters);
    const rows = await db.query<{ id: string; tx: string; auth_code: string; digest: Buffer }>(
      `SELECT l.id::text AS id, l.tx::text AS tx, l.auth_code, ${ENTRY_DIGEST_SQL} AS digest FROM audit_log AS l, ${LEAF_FIELDS}
       WHERE l.id = ANY($1::uuid[])`,
      [records.map((r) => r.id)],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return records.map((record) => {
      const row = byId.get(record.id);
      if (!row) return { id: record.id, same: false, verdict: 'missing' };
      const verdict = judgeEntry({ tx: BigInt(row.tx), code: row.auth_code, digest: row.digest }, 0n, keys);
      return { id: record.id, same: row.digest.equals(entryDigest(record)), verdict: verdict.kind };
    });
  }

  it('agrees on numbers jsonb rewrites, keys it re-orders, escapes, and texts of every kind', async () => {
    const entries: AuditEntry[] = [
      { action: 'a' },
      {
        action: 'nda_created',
        entityType: 'NDA',
        entityId: 42,
        userId: 10n ** 20n,
        outcome: 'failure',
        ip: '::1',
        userAgent: 'Grüße "quoted" \\ 👩‍👩‍👧',
        requestId: 'r\n1',
        occurredAt: new Date('0500-02-03T04:05:06.789Z'),
        changes: {
          big: 1e21,
          tiny: 5e-324,
          neg: -1.5e-7,
          zero: -0,
          max: Number.MAX_SAFE_INTEGER + 2,
          ratio: 0.1 + 0.2,
          huge: 1.7976931348623157e308,
          é: 'accent',
          zz: 'two bytes, after é by length? no: é is two bytes too',
          aaa: [{}, [], null, true, false, ''],
          __proto__: { polluted: 1 },
          ctrl: '\u0001\u001f\u007f\u2028\u2029\b\f\n\r\t"\\/',
          nul: 'a\u0000b',
          lone: 'x\ud800y',
        },
        metadata: 'just a string',
      },
      { action: 'nda_viewed', changes: [3, 'x', { b: 1, a: 2 }], metadata: 12.5, occurredAt: new Date(0) },
      { action: 'nda_viewed', occurredAt: new Date(-1) },
      { action: 'nda_viewed', changes: { password: 'secret', nested: { token: 't', ok: 1 } }, metadata: { b: { d: 1, c: 2 }, a: [1e-7] } },
      { action: 'nda_big', changes: { text: 'y'.repeat(70_000) } },
      { action: 'nda_date', changes: { at: new Date('2026-12-04T10:00:00Z'), n: Number.NaN, inf: Infinity, undef: undefined } },
    ];
    const results = await roundTrip(entries.map((entry) => normalizer.normalize(entry).record));
    expect(results.filter((r) => !r.same || r.verdict !== 'authentic')).toEqual([]);
  }, 30_000);

  it('agrees on arbitrary entries (property)', async () => {
    const text = fc.option(fc.string({ unit: 'grapheme', maxLength: 40 }), { nil: null });
    const entry = fc.record({
      action: fc.string({ minLength: 1, maxLength: 20 }),
      entityType: text,
      entityId: fc.oneof(text, fc.integer()),
      userId: fc.oneof(text, fc.integer()),
      outcome: fc.constantFrom('success' as const, 'failure' as const),
      ip: text,
      userAgent: fc.option(fc.string({ unit: 'binary', maxLength: 40 }), { nil: null }),
      requestId: text,
      changes: fc.jsonValue({ maxDepth: 4 }),
      metadata: fc.oneof(fc.constant(undefined), fc.object({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 })),
      occurredAt: fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 20 }), async (batch) => {
        const results = await roundTrip(batch.map((e) => normalizer.normalize(e).record));
        expect(results.filter((r) => !r.same || r.verdict !== 'authentic')).toEqual([]);
      }),
      { numRuns: 60 },
    );
  }, 120_000);
});
