import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditSealer } from '../src/audit';
import { monthCheckSql } from '../src/audit/lifecycle/month-check-sql';
import { sealingKeys, startSealingApp } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Attack on AuditSealMonths1766800000000 by a role that may insert seals (the sealer's role): one
// empty seal whose range lies, ending inside a transaction of the application's still running
// (audit_seal_check_link only refuses a tx ahead of the server's next). Its record is accepted (its
// manifest names no row; the running transaction's rows are not visible at its commit), and the
// month's check then counts as unsealed only the rows of transactions after that tx: the row that
// transaction writes afterwards, in any past month, is counted by no record and by no probe. The whole read of the month (the check before the
// migration, monthCheckSql) finds it unsealed.
describe('probe: a seal that lies about its range hides the rows written after it', () => {
  const database = 'probe_lying_range';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const asSealer = async <T>(work: (sealer: Client) => Promise<T>): Promise<T> => {
    const sealer = new Client({ connectionString: db.url(database, 'sealer_role', 'sealer-pw') });
    await sealer.connect();
    try {
      return await work(sealer);
    } finally {
      await sealer.end();
    }
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 3);
    await sql(`CREATE ROLE sealer_role LOGIN PASSWORD 'sealer-pw'`);
    await sql(`GRANT SELECT ON audit_log TO sealer_role`);
    await sql(`GRANT INSERT, SELECT ON audit_seal TO sealer_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer) TO sealer_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_check_month(date) TO sealer_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_month_recorded(date) TO sealer_role`);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    await insertRowsAgo(db, database, 3, 20);
    await app.get(AuditSealer).sealNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('keeps a month holding a row written after the lying seal, and counts it as a whole read does', async () => {
    // A transaction of the application's, running: its id is below the server's next, so a seal may name it.
    const writer = new Client({ connectionString: db.url(database) });
    await writer.connect();
    const sealer = new Client({ connectionString: db.url(database, 'sealer_role', 'sealer-pw') });
    await sealer.connect();
    try {
      await writer.query('BEGIN');
      const [{ tx }] = (await writer.query(`SELECT pg_current_xact_id()::text AS tx`)).rows as { tx: string }[];
      // Any later transaction that ends moves the server's snapshot past it.
      await sql(`SELECT pg_current_xact_id()`);
      // An empty seal whose range ends inside that running transaction: accepted at its commit (its manifest names no row).
      await sealer.query(
        `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from)
         SELECT seq + 1, version, hash, $2::bigint, 'ffffffff-ffff-ffff-ffff-ffffffffffff', $2::bigint + 1, 0, root, ''::bytea, now(), $1::bytea,
           key_id, signature, entry_auth_from
         FROM audit_seal ORDER BY seq DESC LIMIT 1`,
        [randomBytes(32), tx],
      );
      // The application's transaction then writes one row in month -3 and commits: no seal covers it.
      await writer.query(
        `INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), $1::timestamptz + interval '30 hours', 'nda_created', 'success')`,
        [monthsAgo(3).start],
      );
      await writer.query('COMMIT');
    } finally {
      await sealer.end();
      await writer.end();
    }
    const [whole] = await sql(monthCheckSql(partitionAgo(3), 'audit_seal'));
    const [check] = await sql(`SELECT k.* FROM audit_log_check_month($1::date) AS k`, [`${monthsAgo(3).month}-01`]);
    // The sealer's role then removes the month through audit_log_retire_month (its grant), with the checkpoint of the month's check.
    const removed = await asSealer(async (sealer) => {
      await sealer.query('BEGIN');
      try {
        const [mine] = (await sealer.query(`SELECT k.* FROM audit_log_check_month($1::date) AS k`, [`${monthsAgo(3).month}-01`])).rows;
        await sealer.query(
          `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from, retention_month, retention_rows, retention_erasures)
           SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, $2, now(), hash, key_id, signature, entry_auth_from, $1::date, $3, $4
           FROM audit_seal ORDER BY seq DESC LIMIT 1`,
          [`${monthsAgo(3).month}-01`, mine.marked, mine.n, mine.erasures],
        );
        await sealer.query('SELECT audit_log_retire_month($1::date, 2)', [`${monthsAgo(3).month}-01`]);
        await sealer.query('COMMIT');
        return 'removed';
      } catch (error) {
        await sealer.query('ROLLBACK');
        return `refused: ${(error as Error).message}`;
      }
    });
    const [{ kept }] = await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(3)]);
    expect({ removed, kept }).toEqual({ removed: expect.stringMatching(/^refused/), kept: true });
    expect(whole).toEqual(expect.objectContaining({ n: '21', unsealed: '0', left_out: '1' }));
    expect({ n: check.n, unsealed: check.unsealed, left_out: check.left_out }).toEqual({
      n: whole.n,
      unsealed: whole.unsealed,
      left_out: whole.left_out,
    });
  }, 90_000);
});
