import { type INestApplication } from '@nestjs/common';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_EVENTS, AuditSealer, AuditSealMonths1766800000000 } from '../src/audit';
import { sealOnce } from '../src/audit/integrity/seal-store';
import { analyzeMonth, sealHeads } from '../src/audit/lifecycle/month-analysis';
import { monthCheckSql } from '../src/audit/lifecycle/month-check-sql';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { sealingKeys, startSealingApp, verify, witnessText } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Retention in constant time (AuditSealMonths1766800000000, docs/LIFECYCLE.md "What a seal records of
// its months"): each seal records, at its commit, what it sealed of each month; a month is then
// checked from those records and two probes, reading none of its rows.
describe('retention of a month from what its seals recorded', () => {
  const database = 'constant_time';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const retained: string[] = [];
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const kept = async (k: number) => (await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(k)]))[0].kept as boolean;
  const retention = async (...args: string[]) => {
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '2', ...args],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retained.push(line) : out.push(line)),
      },
    );
    return { code, out };
  };

  /** The month's check in a transaction rolled back, and what it read of the partition (this transaction's scan counters). */
  async function checkMonth(k: number): Promise<{ check: Record<string, unknown>; read: number; recorded: boolean }> {
    const client = new Client({ connectionString: db.url(database) });
    await client.connect();
    try {
      await client.query('BEGIN');
      const [{ recorded }] = (await client.query(`SELECT audit_log_month_recorded($1::date) AS recorded`, [`${monthsAgo(k).month}-01`]))
        .rows;
      const [check] = (await client.query(`SELECT k.* FROM audit_log_check_month($1::date) AS k`, [`${monthsAgo(k).month}-01`])).rows;
      const [{ read }] = (
        await client.query(
          `SELECT pg_stat_get_xact_tuples_returned($1::regclass) + pg_stat_get_xact_tuples_fetched($1::regclass) AS read`,
          [partitionAgo(k)],
        )
      ).rows;
      return { check, read: Number(read), recorded: recorded as boolean };
    } finally {
      await client.query('ROLLBACK');
      await client.end();
    }
  }

  /** The month's partition summarized by its BRIN index, as autosummarize leaves every range of an old month but its last. */
  const summarize = (k: number) =>
    sql(
      `SELECT brin_summarize_new_values(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
       WHERE i.indrelid = $1::regclass AND a.amname = 'brin'`,
      [partitionAgo(k)],
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-constant-time-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    // The sealer's first attempt runs at start, with nothing to seal: the rows below come once it is
    // over (on a loaded machine it could take them, the trigger the first test turns off still on).
    // sealNow() waits for it; with nothing new, it makes no seal itself.
    await app.get(AuditSealer).sealNow();
    await insertRowsAgo(db, database, 3, 300);
    await insertRowsAgo(db, database, 2, 3);
    await insertRowsAgo(db, database, 1, 2);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a seal made before the migration (its trigger not there) leaves the month read in parts; the migration records it', async () => {
    await sql(`ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_months`);
    await app.get(AuditSealer).sealNow();
    await sql(`ALTER TABLE audit_seal ENABLE TRIGGER audit_seal_months`);
    const before = await checkMonth(3);
    expect(before.recorded).toBe(false);
    expect(before.check).toEqual(expect.objectContaining({ n: '300', unsealed: '0', left_out: '0' }));
    expect(before.read).toBeGreaterThanOrEqual(300);
    const source = new DataSource({ type: 'postgres', url: db.url(database) });
    await source.initialize();
    try {
      const runner = source.createQueryRunner();
      await new AuditSealMonths1766800000000().up(runner);
      await runner.release();
    } finally {
      await source.destroy();
    }
    expect(await sql(`SELECT seq::int, month::text, rows::int, left_out::int FROM audit_seal_month ORDER BY month`)).toEqual([
      { seq: 1, month: `${monthsAgo(3).month}-01`, rows: 300, left_out: 0 },
      { seq: 1, month: `${monthsAgo(2).month}-01`, rows: 3, left_out: 0 },
      { seq: 1, month: `${monthsAgo(1).month}-01`, rows: 2, left_out: 0 },
    ]);
  }, 90_000);

  it('checks a month from the records, reading none of its rows, with the result of a whole read', async () => {
    await summarize(3);
    const { check, read, recorded } = await checkMonth(3);
    expect(recorded).toBe(true);
    expect(read).toBe(0);
    const query = (text: string, parameters?: unknown[]) => sql(text, parameters);
    const heads = await sealHeads(query, 'public.audit_seal');
    // The statement that reads the month whole (audit_log_retire_month's own, when no check stands in for it).
    const [whole] = await sql(monthCheckSql(partitionAgo(3), 'audit_seal'));
    expect(check).toEqual(
      expect.objectContaining({ n: whole.n, unsealed: whole.unsealed, left_out: whole.left_out, covered: whole.covered }),
    );
    expect((check.marked as Buffer).equals(whole.marked as Buffer)).toBe(true);
    expect(JSON.parse(check.erasures as string)).toEqual({ erased: {}, entries: {} });
    expect((await analyzeMonth(query, 'public.audit_log', 'public.audit_seal', heads, monthsAgo(3).start, monthsAgo(3).end)).rows).toBe(
      300,
    );
  }, 60_000);

  it('refuses, at its commit, a seal whose manifest names a row not in its range', async () => {
    const client = new Client({ connectionString: db.url(database) });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from)
         SELECT seq + 1, version, hash, last_tx, last_id, horizon, 1, root, $1::bytea, now(), $2::bytea, key_id, signature, entry_auth_from
         FROM audit_seal ORDER BY seq DESC LIMIT 1`,
        [randomBytes(24), randomBytes(32)],
      );
      await expect(client.query('COMMIT')).rejects.toThrow('seal 2 names 1 rows that are not in its range (0 of 1 found): refused');
    } finally {
      await client.end();
    }
    expect(await sql(`SELECT max(seq)::int AS newest FROM audit_seal`)).toEqual([{ newest: 1 }]);
  }, 60_000);

  it('finds a row written after the newest seal by its probe: retention keeps the month; a dry run and a legal hold still answer', async () => {
    await insertRowsAgo(db, database, 3, 1);
    const { check } = await checkMonth(3);
    expect(check).toEqual(expect.objectContaining({ n: '301', unsealed: '1', left_out: '0' }));
    const run = await retention();
    expect(run.out).toEqual(
      expect.arrayContaining([`KEPT ${monthsAgo(3).month} (${partitionAgo(3)}): not wholly sealed: 1 rows after the newest seal`]),
    );
    expect(await kept(3)).toBe(true);
    await app.get(AuditSealer).sealNow();
    const dry = await retention('--dry-run');
    expect(dry.out).toEqual(
      expect.arrayContaining([`WOULD_RETIRE ${monthsAgo(3).month} (${partitionAgo(3)}): 301 rows, sealed by seals 1–3`]),
    );
    const held = await retention('--legal-hold', monthsAgo(3).month);
    expect(held.out).toEqual(expect.arrayContaining([`KEPT ${monthsAgo(3).month} (${partitionAgo(3)}): legal hold`]));
    expect(await kept(3)).toBe(true);
  }, 90_000);

  it('removes the month from the records, and audit-verify is clean across its checkpoint', async () => {
    // The sealer goes on with this month's rows: the newest seal's last row is no longer in the old month's blocks.
    await insertRowsAgo(db, database, 1, 1);
    await app.get(AuditSealer).sealNow();
    await summarize(3);
    const { read } = await checkMonth(3);
    expect(read).toBe(0);
    const run = await retention();
    expect(run.out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^RETIRED ${monthsAgo(3).month} .*: 301 rows, sealed by seals 1–3; checkpoint seal`)),
      ]),
    );
    expect(run.code).toBe(0);
    expect(await kept(3)).toBe(false);
    const witness = join(dir, 'witness.log');
    writeFileSync(witness, witnessText(stderr) + retained.map((line) => `${line}\n`).join(''));
    const report = await verify(db.url(database), '--witness', witness, '--public-key', join(dir, 'seal.pub'));
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
  }, 90_000);

  it('counts the rows its newest seal left of its last transaction: a month cut inside one is not wholly sealed', async () => {
    // 250 rows in one transaction, the newest seal taking 100 of them: the other 150 share its last row's tx.
    await insertRowsAgo(db, database, 2, 250);
    const source = new DataSource({ type: 'postgres', url: db.url(database) });
    await source.initialize();
    try {
      const runner = source.createQueryRunner();
      await sealOnce(runner, 'audit_log', { maxRows: 100, signingKey: createPrivateKey(keys.privatePem) });
      await runner.release();
    } finally {
      await source.destroy();
    }
    await summarize(2);
    const { check, read } = await checkMonth(2);
    expect(check).toEqual(expect.objectContaining({ n: '253', unsealed: '150', left_out: '0' }));
    // Found without reading that transaction's blocks: the newest seal's record counted them at its commit.
    expect(read).toBe(0);
  }, 60_000);

  it("records a seal inserted without its trigger by the runbook's statement (RUNBOOK section 15)", async () => {
    await insertRowsAgo(db, database, 1, 2);
    await sql(`ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_months`);
    await app.get(AuditSealer).sealNow();
    await sql(`ALTER TABLE audit_seal ENABLE TRIGGER audit_seal_months`);
    expect((await checkMonth(1)).recorded).toBe(false);
    const runbook = readFileSync(join(__dirname, '..', 'docs', 'RUNBOOK.md'), 'utf8');
    const section = runbook.slice(runbook.indexOf('## 15. '));
    const statement = /```sql\n([\s\S]*?)```/.exec(section)?.[1];
    expect(statement).toContain('audit_seal_record_months');
    await sql(statement as string);
    const { check, recorded } = await checkMonth(1);
    expect(recorded).toBe(true);
    expect(check).toEqual(expect.objectContaining({ unsealed: '0', left_out: '0' }));
  }, 60_000);
});
