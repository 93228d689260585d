import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AuditSealer, AuditService } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { entrySigner, resolveEntryKeys } from '../src/audit/integrity/entry-auth';
import { personalSplitter } from '../src/audit/privacy/personal-values';
import { resolvePrivacyOptions } from '../src/audit/privacy/privacy-options';
import { eventually } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { sealingKeys, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Rows an erasure should have taken, still holding the erased values, are named by audit-verify
// (row_not_erased, docs/PRIVACY.md "Verification knows erasure"):
// - "Replay after an erasure": an entry whose subject was erased since it was made must not bring
//   the erased values back silently. The guards live in audit:replay and in the module's recovery;
//   the app's own role (INSERT on audit_log: a leaked DATABASE_URL) passes neither when it inserts
//   the lost entry, as its audit.buffered line in CloudWatch holds it (values, salt and genuine
//   code), straight into the table after the erasure.
// - "Erasing": "{ userId } erases every row whose actor is that user". A caller's transaction that
//   holds a record() row of the user is still open when erase() runs, and commits after erase()
//   has answered: the row cannot be erased by it.
// A row made after the erasure is new, even in a transaction begun before it: never named.
describe('rows an erasure should have taken', () => {
  let db: TestPostgres;
  let url: string;
  let app: INestApplication;
  let stderr: StderrCapture;
  const keys = sealingKeys();
  const secret = randomBytes(32).toString('base64');
  const entryKey = `k1:${secret}`;
  const writer = { user: 'audit_writer', password: 'writer-pw' };
  const normalizer = new AuditEntryNormalizer(
    [],
    64 * 1024,
    entrySigner(resolveEntryKeys([{ id: 'k1', secret }])),
    personalSplitter(resolvePrivacyOptions({ personalData: ['changes.body.email'] })),
  );
  const made = (n: number): AuditRecord =>
    normalizer.normalize({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: `p-${n}`,
      userId: 'u-9',
      changes: { body: { email: 'u-9@example.com' } },
    }).record;

  beforeAll(async () => {
    db = await TestPostgres.start();
    url = await createAuditDatabase(db, 'audit', writer);
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO ${writer.user}`, [], 'audit');
    await db.query(`CREATE TABLE profile (id text PRIMARY KEY)`, [], 'audit');
    await db.query(`GRANT INSERT ON profile TO ${writer.user}`, [], 'audit');
    stderr = new StderrCapture();
    app = await startErasureApp(url, {
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret }] },
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('an entry of the erased subject inserted straight by the app role after the erasure is named, or its values not back', async () => {
    const audit = app.get(AuditService);
    await audit.log({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: 'p-1',
      userId: 'u-9',
      changes: { body: { email: 'u-9@example.com' } },
    });
    await eventually(async () => (await db.query('SELECT 1 FROM audit_log', [], 'audit')).length === 1);
    // Made by the module before the erasure, lost in an outage: only its stderr line holds it.
    const lost = made(2);
    await app.get(AuditSealer).sealNow();
    const erased = await audit.erase({ userId: 'u-9', requestedBy: 'dpo', reason: 'request #1' });
    expect(erased.erased).toBe(1);
    await app.get(AuditSealer).sealNow();

    const { sql, parameters } = buildAuditInsert('audit_log', [lost]);
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql, parameters);
    } finally {
      await client.end();
    }
    await app.get(AuditSealer).sealNow();

    const [row] = await db.query<{ user_id: string; personal: string }>(
      `SELECT user_id, personal FROM audit_log WHERE id = $1`,
      [lost.id],
      'audit',
    );
    const back = row.user_id === 'u-9' && row.personal.includes('u-9@example.com');
    const report = await verify(url, `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    const named = report.out.filter((line) => line.startsWith('ANOMALY') && line.includes(lost.id));
    const summary = report.out.filter((line) => /^(audit-verify|entry authentication|erasure|result):/.test(line));
    // The promise: the erased values are either not back, or the row bringing them is named.
    expect(back ? { named: named.length > 0, code: report.code, summary } : 'not back').toEqual(
      back ? { named: true, code: 1, summary } : 'not back',
    );
  }, 90_000);

  it('leaves no value of the erased user unnamed once erase() has answered and the transaction committed', async () => {
    const audit = app.get(AuditService);
    const runner = app.get(DataSource).createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    let recordId: string;
    let outcome: string;
    try {
      const record = await audit.record(
        {
          action: 'profile_updated',
          entityType: 'Profile',
          entityId: 'p-1',
          userId: 'u-8',
          changes: { body: { email: 'u-8@example.com' } },
        },
        { manager: runner.manager },
      );
      recordId = record.id;
      const erasing = audit.erase({ userId: 'u-8', requestedBy: 'dpo' });
      let timer: NodeJS.Timeout | undefined;
      outcome = await Promise.race([
        erasing.then((r) => `answered: ${r.erased} erased`),
        new Promise<string>((resolve) => (timer = setTimeout(() => resolve('waiting'), 5_000))),
      ]);
      clearTimeout(timer);
      await runner.commitTransaction();
      await erasing;
    } finally {
      await runner.release();
    }
    await app.get(AuditSealer).sealNow();
    const [row] = await db.query<{ user_id: string }>(`SELECT user_id FROM audit_log WHERE id = $1`, [recordId], 'audit');
    const report = await verify(url, `--public-key=${keys.publicPem}`, '--entry-key', `k1:${secret}`);
    const named = report.out.some((line) => line.startsWith('ANOMALY') && line.includes(recordId));
    // Erased, or (its value still there) named by audit-verify.
    expect({ outcome, erasedOrNamed: row.user_id === '[ERASED]' || named }).toEqual({ outcome, erasedOrNamed: true });
  }, 90_000);

  it('names not a new row of the erased user, made and recorded after the erasure in a transaction begun before it', async () => {
    const audit = app.get(AuditService);
    const source = app.get(DataSource);
    const entry = (entityId: string) => ({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId,
      userId: 'u-7',
      changes: { body: { email: 'u-7@example.com' } },
    });
    await source.transaction((manager) => audit.record(entry('q-0'), { manager }));
    const runner = source.createQueryRunner();
    await runner.connect();
    let newId = '';
    try {
      await runner.startTransaction();
      // The caller's own write, before the erasure: its transaction has an id now.
      await runner.query(`INSERT INTO profile (id) VALUES ('q-1')`);
      const erased = await audit.erase({ userId: 'u-7', requestedBy: 'dpo' });
      expect(erased.erased).toBe(1);
      // After erase() has answered, the user acts again: a new entry, made and inserted now.
      newId = (await audit.record(entry('q-1'), { manager: runner.manager })).id;
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }
    await app.get(AuditSealer).sealNow();
    const report = await verify(url, `--public-key=${keys.publicPem}`, '--entry-key', `k1:${secret}`);
    expect(report.out.filter((line) => line.startsWith('ANOMALY') && line.includes(newId))).toEqual([]);
  }, 90_000);
});
