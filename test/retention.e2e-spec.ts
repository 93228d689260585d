import { type INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer } from '../src/audit';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { sealingKeys, startSealingApp, verify, witnessText } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Retention of whole, sealed months (issue 21): months older than the window go by DETACH + DROP
// through the owner's SECURITY DEFINER function, each recorded by a signed checkpoint chained into
// audit_seal and an audit.retained line; a legal hold, a month not wholly sealed and the window
// keep theirs. audit-verify stays clean across the checkpoints (witness and public key), and still
// names a row deleted in a kept month and a month dropped without a checkpoint.
const ago = monthsAgo;
const partitionOf = partitionAgo;

describe('retention of whole, sealed months', () => {
  const database = 'retention';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  /** The audit.retained lines the command wrote: part of the witness, as the log group would hold them. */
  const retainedLines: string[] = [];

  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const seal = () => app.get(AuditSealer).sealNow();
  const insertRows = (k: number, count = 3) => insertRowsAgo(db, database, k, count);
  const retention = async (user: 'postgres' | 'app_role', ...args: string[]) => {
    const out: string[] = [];
    const url = user === 'postgres' ? db.url(database) : db.url(database, 'app_role', 'app-role-pw');
    const code = await runRetention(
      ['--url', url, '--signing-key', join(dir, 'seal.key'), ...args],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retainedLines.push(line) : out.push(line)),
      },
    );
    return { code, out };
  };
  const verifyAll = async () => {
    const witness = join(dir, 'witness.log');
    writeFileSync(witness, witnessText(stderr) + retainedLines.map((line) => `${line}\n`).join(''));
    const publicKey = join(dir, 'seal.pub');
    writeFileSync(publicKey, keys.publicPem);
    return verify(db.url(database), '--witness', witness, '--public-key', publicKey);
  };
  const monthPartitions = async () =>
    (
      await sql(
        `SELECT c.relname AS name FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'audit_log'::regclass ORDER BY 1`,
      )
    ).map((row) => row.name as string);
  const checkpoints = () =>
    sql(
      `SELECT seq::int, to_char(retention_month, 'YYYY-MM') AS month, retention_rows::int AS rows, retention_covered IS NOT NULL AS covered, key_id IS NOT NULL AS signed
       FROM audit_seal WHERE retention_month IS NOT NULL ORDER BY seq`,
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-retention-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    db = await TestPostgres.start();
    await db.createDatabase(database);
    // The prepared-bound path of the partition migration: months of their own from six months back.
    await trailWithPastMonths(db, database, 6);
    await sql(`CREATE ROLE app_role LOGIN PASSWORD 'app-role-pw'`);
    await sql(`GRANT INSERT, SELECT ON audit_log, audit_seal TO app_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer) TO app_role`);
    stderr = new StderrCapture();
    // A long interval: the tests seal when they choose (sealNow), so that a late row stays unsealed.
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    for (let k = 6; k >= 0; k--) await insertRows(k);
    await seal();
    // A late row of a month the window lets go, not sealed yet: its month must stay.
    await insertRows(3, 1);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a dry run lists what would go and why each other month stays, and changes nothing', async () => {
    const before = await sql('SELECT count(*)::int AS seals FROM audit_seal');
    const { code, out } = await retention('postgres', '--months', '2', '--legal-hold', ago(5).month, '--dry-run');
    expect(code).toBe(0);
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^KEPT legacy \(audit_log_legacy\): the legacy partition .* goes whole only when asked \(audit-retention --legacy, or the option retention\.legacy\)$/,
        ),
        expect.stringMatching(new RegExp(`^WOULD_RETIRE ${ago(6).month} \\(${partitionOf(6)}\\): 3 rows, sealed by seals [0-9–]+$`)),
        `KEPT ${ago(5).month} (${partitionOf(5)}): legal hold`,
        expect.stringMatching(new RegExp(`^WOULD_RETIRE ${ago(4).month} \\(${partitionOf(4)}\\): 3 rows, sealed by seals [0-9–]+$`)),
        `KEPT ${ago(3).month} (${partitionOf(3)}): not wholly sealed: 1 rows after the newest seal`,
        `KEPT ${ago(2).month} (${partitionOf(2)}): within the retention window (2 months: only months before ${ago(2).month} go)`,
        `KEPT ${ago(1).month} (${partitionOf(1)}): within the retention window (2 months: only months before ${ago(2).month} go)`,
        expect.stringMatching(/^KEPT default \(audit_log_default\): the default partition is never removed/),
        expect.stringMatching(/^audit-retention \(dry run\): 2 months would go, \d+ partitions stay; nothing was changed$/),
      ]),
    );
    expect(await sql('SELECT count(*)::int AS seals FROM audit_seal')).toEqual(before);
    expect(await monthPartitions()).toEqual(expect.arrayContaining([partitionOf(6), partitionOf(4)]));
    expect(retainedLines).toEqual([]);
  });

  describe('the application role, through the function alone', () => {
    /** As app_role, in one transaction: a checkpoint-shaped newest row for `month` (unless `none`), then the function. */
    const retireAsRole = async (k: number, keepMonths: number, checkpoint: 'checkpoint' | 'none' = 'checkpoint') => {
      const role = new Client({ connectionString: db.url(database, 'app_role', 'app-role-pw') });
      await role.connect();
      try {
        await role.query('BEGIN');
        if (checkpoint === 'checkpoint') {
          await role.query(
            // Signed-looking (the chain is signed: the database refuses an unsigned row), so that the function's own checks answer.
            `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from, retention_month, retention_rows)
             SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, ''::bytea, now(), hash, key_id, signature, entry_auth_from, $1::date,
               (SELECT count(*) FROM audit_log WHERE occurred_at >= $1::date AND occurred_at < $1::date + interval '1 month')
             FROM audit_seal ORDER BY seq DESC LIMIT 1`,
            [`${ago(k).month}-01`],
          );
        }
        await role.query('SELECT audit_log_retire_month($1::date, $2)', [`${ago(k).month}-01`, keepMonths]);
        return 'dropped';
      } finally {
        await role.query('ROLLBACK');
        await role.end();
      }
    };

    it('cannot drop a partition or detach it itself', async () => {
      const role = new Client({ connectionString: db.url(database, 'app_role', 'app-role-pw') });
      await role.connect();
      try {
        await expect(role.query(`DROP TABLE ${partitionOf(6)}`)).rejects.toThrow(/must be owner/);
        await expect(role.query(`ALTER TABLE audit_log DETACH PARTITION ${partitionOf(6)}`)).rejects.toThrow(/must be owner/);
      } finally {
        await role.end();
      }
    });

    it('cannot retire a month that is not wholly sealed, one within the window, or one without a checkpoint', async () => {
      await expect(retireAsRole(3, 2)).rejects.toThrow(`month ${ago(3).month} holds rows not sealed yet`);
      await expect(retireAsRole(1, 1)).rejects.toThrow(`month ${ago(1).month} is within the retention window of 1 months`);
      await expect(retireAsRole(1, 0)).rejects.toThrow('keep_months must be 1 to 1200, not 0');
      await expect(retireAsRole(4, 2, 'none')).rejects.toThrow(
        `the newest row of audit_seal must be the retention checkpoint of month ${ago(4).month}`,
      );
      expect(await monthPartitions()).toEqual(expect.arrayContaining([partitionOf(6), partitionOf(4), partitionOf(3), partitionOf(1)]));
    });
  });

  it('with a legal hold, removes the old, wholly sealed months (as the application role), each by a signed checkpoint and an audit.retained line', async () => {
    const { code, out } = await retention('app_role', '--months', '2', '--legal-hold', ago(5).month);
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(`^RETIRED ${ago(6).month} \\(${partitionOf(6)}\\): 3 rows, sealed by seals [0-9–]+; checkpoint seal \\d+$`),
        ),
        `KEPT ${ago(5).month} (${partitionOf(5)}): legal hold`,
        expect.stringMatching(new RegExp(`^RETIRED ${ago(4).month} `)),
        `KEPT ${ago(3).month} (${partitionOf(3)}): not wholly sealed: 1 rows after the newest seal`,
        expect.stringMatching(/^audit-retention: 2 months removed, \d+ partitions kept, 0 failed$/),
      ]),
    );
    expect(code).toBe(0);
    const partitions = await monthPartitions();
    expect(partitions).not.toContain(partitionOf(6));
    expect(partitions).not.toContain(partitionOf(4));
    expect(partitions).toEqual(expect.arrayContaining([partitionOf(5), partitionOf(3), partitionOf(2)]));
    expect(await checkpoints()).toEqual([
      { seq: expect.any(Number), month: ago(6).month, rows: 3, covered: true, signed: true },
      { seq: expect.any(Number), month: ago(4).month, rows: 3, covered: true, signed: true },
    ]);
    const lines = retainedLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({ event: 'audit.retained', month: ago(6).month, retainedRows: 3, rows: 0, signature: expect.any(String) }),
      expect.objectContaining({ event: 'audit.retained', month: ago(4).month, retainedRows: 3 }),
    ]);
    // The covered hash is a seal's, the newest that sealed a row of the month.
    const covered = await sql(
      `SELECT encode(c.retention_covered, 'hex') AS hash FROM audit_seal AS c JOIN audit_seal AS s ON s.hash = c.retention_covered
       WHERE c.retention_month IS NOT NULL AND s.retention_month IS NULL ORDER BY c.seq`,
    );
    expect(covered.map((c) => c.hash)).toEqual(lines.map((line) => line.coveredHash));
  });

  it('audit-verify is clean across the checkpoints, with the witness and the public key, and sealing goes on after them', async () => {
    const first = await verifyAll();
    expect(first.anomalies).toEqual([]);
    expect(first.out).toContain(`retention: 2 checkpoints, months ${ago(6).month}, ${ago(4).month} removed (6 rows), each in the chain`);
    expect(first.code).toBe(0);
    await insertRows(0, 2);
    await seal();
    const [newest] = await sql(
      `SELECT n.retention_month IS NULL AS seal, n.row_count, n.prev_hash = c.hash AS continues FROM audit_seal AS n, audit_seal AS c
       WHERE n.seq = (SELECT max(seq) FROM audit_seal) AND c.seq = (SELECT max(seq) FROM audit_seal WHERE retention_month IS NOT NULL)`,
    );
    expect(newest).toEqual({ seal: true, row_count: 3, continues: true });
    const again = await verifyAll();
    expect(again.anomalies).toEqual([]);
    expect(again.code).toBe(0);
  });

  it('without the legal hold, the held month goes too; the late row sealed, its month goes as well, once, by two runs at once; still clean', async () => {
    // Two instances applying retention together: each month goes once, and neither run fails.
    const [{ code, out }, other] = await Promise.all([retention('postgres', '--months', '2'), retention('app_role', '--months', '2')]);
    expect(other.out.filter((line) => line.startsWith('FAILED'))).toEqual([]);
    expect(other.code).toBe(0);
    out.push(...other.out.filter((line) => line.startsWith('RETIRED')));
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^RETIRED ${ago(5).month} `)),
        expect.stringMatching(new RegExp(`^RETIRED ${ago(3).month} .*4 rows`)),
      ]),
    );
    expect(code).toBe(0);
    expect((await checkpoints()).map((c) => c.month)).toEqual([ago(6).month, ago(4).month, ago(5).month, ago(3).month]);
    const report = await verifyAll();
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
  });

  it('names a row deleted inside a month that is kept', async () => {
    const [{ id }] = await sql(`SELECT id::text AS id FROM audit_log WHERE occurred_at >= $1 AND occurred_at < $2 LIMIT 1`, [
      ago(1).start,
      ago(1).end,
    ]);
    await sql(`BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM ${partitionOf(1)} WHERE id = '${id as string}'; COMMIT`);
    const report = await verifyAll();
    expect(report.anomalies).toEqual(['ANOMALY row_missing row ' + (id as string)]);
    expect(report.code).toBe(1);
  });

  it('names a month dropped without a checkpoint', async () => {
    await sql(`DROP TABLE ${partitionOf(2)}`);
    const report = await verifyAll();
    expect(report.anomalies).toContain(`ANOMALY month_dropped month ${ago(2).month}`);
    expect(report.out.filter((line) => line.startsWith('ANOMALY row_missing'))).toHaveLength(4);
    expect(report.code).toBe(1);
  });

  it('checks the rows of a seal whose fields were changed to look like a checkpoint', async () => {
    const [{ seq }] = await sql(`SELECT seq::int FROM audit_seal WHERE row_count > 0 ORDER BY seq DESC LIMIT 1`);
    const [{ id }] = await sql(`SELECT id::text AS id FROM audit_log WHERE occurred_at >= $1 ORDER BY tx DESC LIMIT 1`, [ago(0).start]);
    await sql(
      `BEGIN; SET LOCAL session_replication_role = replica;
       UPDATE audit_seal SET retention_month = '2000-01-01', retention_rows = 0 WHERE seq = ${seq as number};
       DELETE FROM audit_log WHERE id = '${id as string}'; COMMIT`,
    );
    const report = await verifyAll();
    expect(report.anomalies).toEqual(
      expect.arrayContaining([`ANOMALY seal_changed seal ${seq as number}`, `ANOMALY row_missing row ${id as string}`]),
    );
    expect(report.code).toBe(1);
  });
});
