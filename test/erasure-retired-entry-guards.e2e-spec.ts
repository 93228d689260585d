import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AuditSealer, AuditService, DEFAULT_REDACT_KEYS } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { entrySigner, parseEntryKeys, resolveEntryKeys } from '../src/audit/integrity/entry-auth';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { eraseSubject } from '../src/audit/privacy/erasure';
import { personalSplitter } from '../src/audit/privacy/personal-values';
import { resolvePrivacyOptions } from '../src/audit/privacy/privacy-options';
import { heldBackByErasure } from '../src/audit/privacy/replay-guard';
import { uuidv7Time } from '../src/audit/uuidv7';
import { eventually } from './support/app';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { monthsAgo as ago, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/PRIVACY.md, "Erasure and retention": retention may remove the month of an erasure's
// `audit_erasure` entry; its checkpoint carries the erasure forward (its id, whose UUIDv7 time is
// when it was made, and its subject's pseudonym). The replay guard (audit:replay and the
// module's recovery) and audit-verify's coverage check read those too: an entry of the erased
// subject made before the erasure (its month on legal hold) is still held back, and named once
// inserted anyway.
describe('an erasure whose entry was retired with its month', () => {
  const database = 'retired_erasure';
  const sealKeys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const keys = resolveEntryKeys(parseEntryKeys(entryKey)).map((k) => k.key);
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  let lost: AuditRecord;

  const sql = (text: string, parameters: unknown[] = []) => db.query<Record<string, unknown>>(text, parameters, database);
  const at = (k: number, hour: number) => new Date(new Date(ago(k).start).getTime() + hour * 3_600_000);
  const normalizer = () => (app.get(AuditService) as unknown as { normalizer: AuditEntryNormalizer }).normalizer;
  const guard = () => heldBackByErasure(sql, '"public"."audit_log"', [lost], keys);
  const entry = (entityId: string, k: number, hour: number) => ({
    action: 'profile_updated',
    entityType: 'Profile',
    entityId,
    userId: 'cy',
    ip: '203.0.113.7',
    changes: { body: { email: 'cy@example.com' } },
    occurredAt: at(k, hour),
  });
  const sealAll = async () => {
    await eventually(async () => {
      await app.get(AuditSealer).sealNow();
      const [{ n }] = await sql(
        `SELECT (SELECT count(*) FROM audit_log) - (SELECT coalesce(sum(row_count), 0) - coalesce(sum(retention_rows), 0) FROM audit_seal) AS n`,
      );
      return Number(n) === 0;
    });
  };

  beforeAll(async () => {
    // Cy's entry made in month -4 (its UUIDv7 id too), that never reached the table (an outage; kept
    // in a spool or an export). Made first: ids of this process only move forward.
    const made = at(4, 5).getTime();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(made);
    try {
      lost = new AuditEntryNormalizer(
        [...DEFAULT_REDACT_KEYS],
        64 * 1024,
        entrySigner(resolveEntryKeys(parseEntryKeys(entryKey))),
        personalSplitter(resolvePrivacyOptions({ personalData: ['changes.body.email'] })),
      ).normalize(entry('cy-lost', 4, 5)).record;
    } finally {
      clock.mockRestore();
    }
    expect(uuidv7Time(lost.id)).toBe(made);
    dir = mkdtempSync(join(tmpdir(), 'audit-retired-erasure-'));
    writeFileSync(join(dir, 'seal.key'), sealKeys.privatePem, { mode: 0o600 });
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), {
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 600_000, signingKey: sealKeys.privatePem, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    });
    const service = app.get(AuditService);
    await service.log({ action: 'filler', entityType: 'Profile', entityId: 'held', occurredAt: at(4, 1) });
    await service.log(entry('cy-kept', 3, 1));
    await eventually(async () => (await sql(`SELECT 1 FROM audit_log WHERE entity_id IN ('held', 'cy-kept')`)).length === 2);
    // Cy's erasure, made in month -3 as AuditService.erase makes it (an erasure of long ago).
    const client = new Client({ connectionString: db.url(database) });
    await client.connect();
    try {
      await client.query('BEGIN');
      const erasure = await eraseSubject(
        {
          query: async (text, parameters) => (await client.query(text, parameters)).rows,
          table: '"public"."audit_log"',
          normalize: (e) => normalizer().normalize({ ...e, occurredAt: at(3, 20) }).record,
          key: keys[0],
          userIdPseudonym: null,
        },
        { userId: 'cy', requestedBy: 'dpo' },
      );
      await client.query('COMMIT');
      expect(erasure.erased).toBe(1);
    } finally {
      await client.end();
    }
    await sealAll();
    // While the erasure entry is in the table, the guard holds the lost entry back.
    expect((await guard()).map((h) => h.id)).toEqual([lost.id]);
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '2', '--legal-hold', ago(4).month],
      {},
      { out: (line) => out.push(line), err: () => undefined },
    );
    expect(out).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^RETIRED ${ago(3).month} `))]));
    expect(code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('still holds back, on replay and recovery, an entry of the erased user made before the erasure', async () => {
    expect((await guard()).map((h) => h.id)).toEqual([lost.id]);
  }, 60_000);

  it('names row_not_erased once such an entry is inserted after the erasure anyway', async () => {
    const { sql: insert, parameters } = buildAuditInsert('audit_log', [lost]);
    await sql(insert, parameters);
    await sealAll();
    const { anomalies } = await verify(db.url(database), '--entry-key', entryKey);
    expect(anomalies).toContain(`ANOMALY row_not_erased row ${lost.id}`);
  }, 60_000);
});
