import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { runErase } from '../src/audit/privacy/erase-command';
import { personalSplitter } from '../src/audit/privacy/personal-values';
import { resolvePrivacyOptions } from '../src/audit/privacy/privacy-options';
import { splitErased } from '../src/audit/privacy/recovery-guard';
import { uuidv7 } from '../src/audit/uuidv7';
import { TestPostgres } from './support/postgres';

const PSEUDONYM_KEY = 'a-pseudonym-key-of-at-least-32-characters';

// audit:replay and the recovery (spool drain, ring flush) hold back an entry whose subject was
// erased since it was made. "Since" cannot go by occurredAt alone: a caller may set it, and an
// instance whose clock runs ahead puts it late. An entry made before the erasure but dated after
// it is held back as well; one made well after the erasure is not.
describe('the erasure guard and entries dated after the erasure', () => {
  let db: TestPostgres;
  const normalizer = new AuditEntryNormalizer(
    [],
    64 * 1024,
    undefined,
    personalSplitter(resolvePrivacyOptions({ personalData: ['changes.email'] })),
  );
  const record = (userId: string, n: number, occurredAt?: Date): AuditRecord =>
    normalizer.normalize({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: `p-${n}`,
      userId,
      changes: { email: `${userId}@example.com` },
      ...(occurredAt ? { occurredAt } : {}),
    }).record;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('audit');
    const migrator = new DataSource({ type: 'postgres', url: db.url('audit'), migrations: [...AUDIT_MIGRATIONS] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('holds back an entry made before the erasure though its occurredAt is later (a clock ahead, or a set occurredAt)', async () => {
    // Written (spooled) now; dated ten minutes ahead, as by an instance whose clock runs ahead.
    const stored = record('u-9', 1);
    const pending = record('u-9', 2, new Date(Date.now() + 10 * 60_000));
    const dated = record('u-9', 3, new Date(Date.now() - 60_000));
    const { sql, parameters } = buildAuditInsert('audit_log', [stored]);
    await db.query(sql, parameters, 'audit');
    const lines: string[] = [];
    const code = await runErase(
      ['--url', db.url('audit'), '--user', 'u-9'],
      { AUDIT_PRIVACY_PSEUDONYM_KEY: PSEUDONYM_KEY },
      { out: (l) => lines.push(l), err: (l) => lines.push(l) },
    );
    expect([code, lines.at(-1)]).toEqual([0, expect.stringMatching(/^audit-erase: 1 rows erased/)]);
    const key = resolvePrivacyOptions({ pseudonymKey: PSEUDONYM_KEY }).pseudonymKey;
    const client = new Client({ connectionString: db.url('audit') });
    await client.connect();
    try {
      const { keep, held } = await splitErased(
        async (text, values) => (await client.query(text, values)).rows,
        '"audit_log"',
        [pending, dated],
        key ? [key] : [],
      );
      expect({ kept: keep.map((r) => r.entityId), held: held.map((h) => h.record.entityId) }).toEqual({
        kept: [],
        held: ['p-2', 'p-3'],
      });
      // Made five minutes after the erasure (its id's time and its occurredAt): not held back.
      const later = { ...record('u-9', 4, new Date(Date.now() + 5 * 60_000)), id: uuidv7(Date.now() + 5 * 60_000) };
      const after = await splitErased(
        async (text, values) => (await client.query(text, values)).rows,
        '"audit_log"',
        [later],
        key ? [key] : [],
      );
      expect({ kept: after.keep.map((r) => r.entityId), held: after.held.map((h) => h.record.entityId) }).toEqual({
        kept: ['p-4'],
        held: [],
      });
    } finally {
      await client.end();
    }
  }, 60_000);
});
