import { type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import fc from 'fast-check';
import { AuditLog, AuditModule, AuditService, CreateAuditLog1732700000000 } from '../src/audit';
import { type AuditEntry, AuditEntryNormalizer } from '../src/audit/audit-entry';
import { AUDIT_DEFAULTS } from '../src/audit/audit-options';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

interface Row {
  entity_id: string;
  occurred_at: Date;
  metadata: Record<string, unknown> | null;
}

// Promise 9 for the values a caller can hand to log(): entries logged in the same turn share one
// INSERT, and one of them carrying a date PostgreSQL refuses must not cost the others their rows.
describe('an entry with a date PostgreSQL cannot store, batched with healthy ones', () => {
  let db: TestPostgres;
  let app: INestApplicationContext;
  let stderr: StderrCapture;

  const rows = (prefix: string) =>
    db.query<Row>('SELECT entity_id, occurred_at, metadata FROM audit_log WHERE entity_id LIKE $1 ORDER BY entity_id', [`${prefix}%`]);

  beforeAll(async () => {
    db = await TestPostgres.start();
    stderr = new StderrCapture();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [CreateAuditLog1732700000000],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ mode: 'sync', auditHttp: false }),
      ],
    }).compile();
    app = await moduleRef.init();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it.each([
    ['far future', '+200000-01-01T00:00:00.000Z'],
    ['year 10000', '+010000-01-01T00:00:00.000Z'],
    ['year 0 (1 BC)', '0000-06-01T00:00:00.000Z'],
    ['before 4713 BC', '-271821-04-20T00:00:00.000Z'],
  ])('%s: every entry gets its row, the poison one at the time of log() with the original kept', async (label, iso) => {
    const audit = app.get(AuditService);
    const prefix = `${label}:`;
    const before = Date.now();
    await Promise.all([
      audit.log({ action: 'nda_created', entityId: `${prefix}a` }),
      audit.log({ action: 'nda_created', entityId: `${prefix}b`, occurredAt: new Date(iso), metadata: { statusCode: 201 } }),
      audit.log({ action: 'nda_created', entityId: `${prefix}c` }),
    ]);

    const found = await rows(prefix);
    expect(found.map((r) => r.entity_id)).toEqual([`${prefix}a`, `${prefix}b`, `${prefix}c`]);
    expect(found[1].occurred_at.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(found[1].metadata).toEqual({ _auditOriginalOccurredAt: iso, statusCode: 201 });
    expect(audit.dbAvailable).toBe(true);
    expect(stderr.of('audit.db_write_failed')).toEqual([]);
  });

  it('an entry the table refuses (a CHECK of the table) is quarantined; its batch-mates commit; the service stays up', async () => {
    const audit = app.get(AuditService);
    await db.query("ALTER TABLE audit_log ADD CONSTRAINT no_poison CHECK (action <> 'poison_made')");
    try {
      await Promise.all([
        audit.log({ action: 'nda_created', entityId: 'check:a' }),
        audit.log({ action: 'poison_made', entityId: 'check:b' }),
        audit.log({ action: 'nda_created', entityId: 'check:c' }),
      ]);
      expect((await rows('check:')).map((r) => r.entity_id)).toEqual(['check:a', 'check:c']);
      expect(audit.status()).toMatchObject({ state: 'up', buffered: 0, quarantined: 1 });
      expect(stderr.of('audit.quarantined')).toEqual([
        expect.objectContaining({ entityId: 'check:b', error: expect.objectContaining({ code: '23514' }) }),
      ]);
      expect(stderr.of('audit.db_write_failed')).toEqual([]);
    } finally {
      await db.query('ALTER TABLE audit_log DROP CONSTRAINT no_poison');
    }
  });

  it('keeps a date PostgreSQL stores exactly as given, at both ends of the kept range', async () => {
    const audit = app.get(AuditService);
    await Promise.all([
      audit.log({ action: 'nda_created', entityId: 'edge:first', occurredAt: new Date('0001-01-01T00:00:00.000Z') }),
      audit.log({ action: 'nda_created', entityId: 'edge:last', occurredAt: new Date('9999-12-31T23:59:59.999Z') }),
    ]);
    const found = await db.query<{ entity_id: string; occurred: string; metadata: unknown }>(
      `SELECT entity_id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS occurred, metadata
       FROM audit_log WHERE entity_id LIKE 'edge:%' ORDER BY entity_id`,
    );
    expect(found).toEqual([
      { entity_id: 'edge:first', occurred: '0001-01-01T00:00:00.000', metadata: null },
      { entity_id: 'edge:last', occurred: '9999-12-31T23:59:59.999', metadata: null },
    ]);
  });

  it('fits the widest text in the indexed columns: btree rows stay under their size limit (54000)', async () => {
    const normalizer = new AuditEntryNormalizer([], 64 * 1024);
    // Three UTF-8 bytes per UTF-16 unit is the most a capped field can hold; random, so that
    // PostgreSQL cannot compress the index row below its limit.
    let seed = 42;
    const random = (from: number, span: number) => from + ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % span);
    const widest = String.fromCharCode(...Array.from({ length: 1000 }, () => random(0x800, 0xd7ff - 0x800)));
    const emoji = String.fromCodePoint(...Array.from({ length: 500 }, () => random(0x1f300, 0x2ff)));
    const records = [widest, emoji].map(
      (text) =>
        normalizer.normalize({ action: text, entityType: text, entityId: text, userId: text, requestId: text, userAgent: text }).record,
    );
    const { sql, parameters } = buildAuditInsert('"audit_log"', records, { returning: true });
    expect(await db.query(sql, parameters)).toHaveLength(2);
  });

  it('inserts any normalized entry, however hostile its values, in one multi-row INSERT with the others', async () => {
    const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, 4096);
    const text = fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('', '\u0000', '\ud800', 'a\u0000\udfff'));
    const entry = fc.record(
      {
        action: text,
        entityType: text,
        entityId: fc.oneof(text, fc.integer(), fc.double()),
        userId: fc.oneof(text, fc.bigInt(), fc.double()),
        outcome: fc.constantFrom('success', 'failure', 'other' as never),
        ip: text,
        userAgent: text,
        requestId: text,
        occurredAt: fc.date({ noInvalidDate: false }),
        changes: fc.anything({
          withBigInt: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withTypedArray: true,
          withNullPrototype: true,
        }),
        metadata: fc.anything({ withBigInt: true, withDate: true, withSparseArray: true, withObjectString: true }),
      },
      { requiredKeys: ['action'] },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 8 }), async (entries) => {
        // JavaScript callers are not held to the types: a bigint user id or a bad outcome arrives too.
        const records = entries.map((e) => normalizer.normalize(e as AuditEntry).record);
        const { sql, parameters } = buildAuditInsert('"audit_log"', records, { returning: true });
        const inserted = await db.query<{ id: string }>(sql, parameters);
        expect(inserted.map((r) => r.id).sort()).toEqual(records.map((r) => r.id).sort());
      }),
      { numRuns: 150 },
    );
  });
});
