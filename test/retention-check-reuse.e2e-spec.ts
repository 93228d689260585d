import { type INestApplication } from '@nestjs/common';
import { AuditSealer } from '../src/audit';
import { startSealingApp } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// audit_log_retire_month reuses what audit_log_month_check found earlier in the same transaction.
// Other sessions cannot change the month meanwhile (the check holds SHARE on its partition), but the
// transaction itself can: a row it inserts after the check, with a checkpoint stating what the check
// found, must not go with the month unseen. The function then reads the month again and refuses.
describe('audit_log_retire_month after a row came into the month since its check', () => {
  const database = 'check_reuse';
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000 } });
    await insertRowsAgo(db, database, 3, 3);
    await app.get(AuditSealer).sealNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  const checkpointFor = `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash,
      entry_auth_from, retention_month, retention_rows, retention_covered, retention_erasures)
    SELECT s.seq + 1, s.version, s.hash, s.last_tx, s.last_id, s.horizon, 0, s.root, c.manifest, now(), sha256(s.hash),
      s.entry_auth_from, $1::date, c.rows, c.covered_hash, c.erasures
    FROM audit_seal AS s, audit_log_month_check($1::date) AS c ORDER BY s.seq DESC LIMIT 1`;

  it('refuses the month, and keeps its partition, when the transaction inserted a row after the check', async () => {
    const month = `${monthsAgo(3).month}-01`;
    const client = await db.connect(database);
    try {
      await client.query('BEGIN');
      await client.query(checkpointFor, [month]);
      await client.query(
        `INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), $1::timestamptz + interval '5 hours', 'nda_forged', 'success')`,
        [month],
      );
      await expect(client.query('SELECT audit_log_retire_month($1::date, 2)', [month])).rejects.toThrow(/not sealed yet|no seal sealed/);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
    expect(await db.query(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(3)], database)).toEqual([{ kept: true }]);
  }, 60_000);

  it('retires the month on what the check found when nothing changed since', async () => {
    const month = `${monthsAgo(3).month}-01`;
    const client = await db.connect(database);
    try {
      await client.query('BEGIN');
      await client.query(checkpointFor, [month]);
      const [{ rows }] = (await client.query('SELECT audit_log_retire_month($1::date, 2) AS rows', [month])).rows;
      await client.query('COMMIT');
      expect(rows).toBe('3');
    } finally {
      await client.end();
    }
    expect(await db.query(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(3)], database)).toEqual([{ kept: false }]);
  }, 60_000);
});
