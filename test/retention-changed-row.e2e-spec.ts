import { type INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AuditSealer } from '../src/audit';
import { encodeRetained } from '../src/audit/lifecycle/checkpoint';
import { retentionErasures } from '../src/audit/lifecycle/checkpoint-erasures';
import { analyzeMonth, type MonthAnalysis, sealHeads } from '../src/audit/lifecycle/month-analysis';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A superuser (triggers off) changes a sealed row of a month about to go. Its id is still in its
// seal's manifest, its leaf is not: it is no longer the row the seal sealed. audit_log_retire_month
// by itself, whatever the calling code checked, reads the month and refuses it (it matches each row
// to its manifest entry by id and leaf prefix). The check audit_log_check_month made earlier in the
// transaction stands in for the function's own only while the month is as it was checked. That
// check now answers from what each seal recorded of its months at its commit
// (AuditSealMonths1766800000000), reading no row: the trade (docs/LIFECYCLE.md, docs/INTEGRITY.md)
// is that retention no longer sees a row changed in place with triggers off, and the month goes
// with it; audit-verify, which hashes every row, names it when run before retention.
describe('retention and a sealed row changed in the month that goes; the check made before the checkpoint', () => {
  const database = 'changed_row';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  let before: MonthAnalysis;
  let changed: string;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const kept = async () => (await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(3)]))[0].kept as boolean;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-changed-row-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    await insertRowsAgo(db, database, 3, 3);
    await insertRowsAgo(db, database, 2, 3);
    await insertRowsAgo(db, database, 1, 2);
    await app.get(AuditSealer).sealNow();
    const query = async (text: string, parameters?: unknown[]) => sql(text, parameters);
    // The month as every row of it was sealed: what code matching rows by id alone would find after the change too.
    before = await analyzeMonth(
      query,
      'public.audit_log',
      'public.audit_seal',
      await sealHeads(query, 'public.audit_seal'),
      monthsAgo(3).start,
      monthsAgo(3).end,
    );
    expect(before).toEqual(expect.objectContaining({ rows: 3, unsealed: 0, leftOut: 0 }));
    [{ id: changed }] = (await sql(`SELECT id::text AS id FROM ${partitionAgo(3)} ORDER BY id LIMIT 1`)) as { id: string }[];
    await sql(
      `BEGIN; SET LOCAL session_replication_role = replica; UPDATE audit_log SET action = 'nda_deleted' WHERE id = '${changed}'; COMMIT`,
    );
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is refused by audit_log_retire_month itself for code that marks the changed row as sealed', async () => {
    const month = `${monthsAgo(3).month}-01`;
    const client = new Client({ connectionString: db.url(database) });
    await client.connect();
    try {
      await client.query('BEGIN');
      const carried = await retentionErasures(
        async (text, parameters) => (await client.query(text, parameters)).rows,
        'public.audit_log',
        monthsAgo(3).month,
      );
      await client.query(
        `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from, retention_month, retention_rows, retention_erasures)
         SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, $2, now(), hash, key_id, signature, entry_auth_from, $1::date, $3, $4
         FROM audit_seal ORDER BY seq DESC LIMIT 1`,
        [month, encodeRetained(before.retained), before.rows, carried],
      );
      await expect(client.query('SELECT audit_log_retire_month($1::date, 2)', [month])).rejects.toThrow(
        `month ${monthsAgo(3).month} holds 1 rows that no seal sealed`,
      );
    } finally {
      await client.query('ROLLBACK');
      await client.end();
    }
    expect(await kept()).toBe(true);
  }, 60_000);

  it('checks the month again in audit_log_retire_month when the transaction wrote a row into it after audit_log_check_month', async () => {
    const month = `${monthsAgo(2).month}-01`;
    const client = new Client({ connectionString: db.url(database) });
    await client.connect();
    try {
      await client.query('BEGIN');
      const [check] = (await client.query('SELECT k.* FROM audit_log_check_month($1::date) AS k', [month])).rows as {
        n: string;
        unsealed: string;
        left_out: string;
        marked: Buffer;
        erasures: string;
      }[];
      expect(check).toEqual(expect.objectContaining({ n: '3', unsealed: '0', left_out: '0' }));
      // The same transaction (its own SHARE lock does not stop it) adds a row to the month: it is not sealed.
      await client.query(
        `INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), $1::timestamptz + interval '9 hours', 'nda_created', 'success')`,
        [monthsAgo(2).start],
      );
      await client.query(
        `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from, retention_month, retention_rows, retention_erasures)
         SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, $2, now(), hash, key_id, signature, entry_auth_from, $1::date, $3, $4
         FROM audit_seal ORDER BY seq DESC LIMIT 1`,
        [month, check.marked, Number(check.n), check.erasures],
      );
      await expect(client.query('SELECT audit_log_retire_month($1::date, 1)', [month])).rejects.toThrow(
        `month ${monthsAgo(2).month} holds rows not sealed yet`,
      );
    } finally {
      await client.query('ROLLBACK');
      await client.end();
    }
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(2)])).toEqual([{ kept: true }]);
  }, 60_000);

  it('the trade: audit-verify run before retention names the changed row; audit-retention, reading no row, removes the month with it', async () => {
    const before = await verify(db.url(database), '--public-key', join(dir, 'seal.pub'));
    expect(before.out.filter((line) => line.startsWith('ANOMALY') && line.includes(changed))).not.toEqual([]);
    expect(before.code).toBe(1);
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '2'],
      {},
      { out: (line) => out.push(line), err: (line) => out.push(line) },
    );
    // The month is checked from what its seal recorded at its commit: the row changed since in place is not seen.
    expect(out).toEqual(
      expect.arrayContaining([`RETIRED ${monthsAgo(3).month} (${partitionAgo(3)}): 3 rows, sealed by seals 1; checkpoint seal 3`]),
    );
    expect(code).toBe(0);
    expect(await kept()).toBe(false);
    // The evidence went with the month: only the verify run before retention could name it.
    const after = await verify(db.url(database), '--public-key', join(dir, 'seal.pub'));
    expect(after.out.filter((line) => line.includes(changed))).toEqual([]);
    expect(after.code).toBe(0);
  }, 90_000);
});
