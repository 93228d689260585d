import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditSealer } from '../src/audit';
import { monthCheckSql } from '../src/audit/lifecycle/month-check-sql';
import { sealingKeys, startSealingApp } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A recorded seal's range is closed (docs/LIFECYCLE.md, "What a seal records of its months"): at the
// seal's commit every transaction up to its last one and below its horizon has ended, so no row can
// join its range later, and audit_log_check_month may count as unsealed only the rows of later
// transactions. A seal that ends inside, or vouches past, a transaction still running is refused at
// its commit (whoever inserts it: the sealer's role needs no signing key to insert a row); the
// sealer's own seals, made while the application's transactions run, are not.
describe('retention: a seal is recorded only once every transaction of its range has ended', () => {
  const database = 'retention_range_ended';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const first = (k: number) => `${monthsAgo(k).month}-01`;
  const connect = async (user?: string, password?: string): Promise<Client> => {
    const client = new Client({ connectionString: user ? db.url(database, user, password) : db.url(database) });
    await client.connect();
    return client;
  };
  /** A seal copied from the newest one, with another hash (no signing key needed to insert it) and the given range. */
  const insertSeal = (client: Client, lastTx: string, horizon: string) =>
    client
      .query(
        `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from)
         SELECT seq + 1, version, hash, $2::bigint, 'ffffffff-ffff-ffff-ffff-ffffffffffff', $3::bigint, 0, root, ''::bytea, now(), $1::bytea,
           key_id, signature, entry_auth_from
         FROM audit_seal ORDER BY seq DESC LIMIT 1`,
        [randomBytes(32), lastTx, horizon],
      )
      .then(
        () => 'recorded',
        (error: Error) => `refused: ${error.message}`,
      );
  const insertRow = (client: Client, k: number) =>
    client.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), $1::timestamptz + interval '30 hours', 'nda_created', 'success')`,
      [monthsAgo(k).start],
    );
  const counts = async (k: number) => {
    const [whole] = await sql(monthCheckSql(partitionAgo(k), 'audit_seal'));
    const [check] = await sql(`SELECT k.* FROM audit_log_check_month($1::date) AS k`, [first(k)]);
    return {
      whole: { n: whole.n, unsealed: whole.unsealed, left_out: whole.left_out },
      check: { n: check.n, unsealed: check.unsealed, left_out: check.left_out },
    };
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
    await insertRowsAgo(db, database, 2, 5);
    await insertRowsAgo(db, database, 1, 5);
    await app.get(AuditSealer).sealNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('refuses a seal whose range ends inside a running transaction, and keeps the month that transaction then writes to', async () => {
    const writer = await connect();
    const sealer = await connect('sealer_role', 'sealer-pw');
    let recorded: string;
    try {
      await writer.query('BEGIN');
      const [{ tx }] = (await writer.query(`SELECT pg_current_xact_id()::text AS tx`)).rows as { tx: string }[];
      // A later transaction that ends moves the server's next id past it: audit_seal_check_link lets a seal name it.
      await sql(`SELECT pg_current_xact_id()`);
      recorded = await insertSeal(sealer, tx, String(BigInt(tx) + 1n));
      await insertRow(writer, 3);
      await writer.query('COMMIT');
    } finally {
      await sealer.end();
      await writer.end();
    }
    expect(recorded).toMatch(/has not ended: refused$/);
    expect(await counts(3)).toEqual({
      whole: { n: '21', unsealed: '1', left_out: '0' },
      check: { n: '21', unsealed: '1', left_out: '0' },
    });
    // The sealer's role removes the month with a checkpoint of the check's numbers: refused, the new row being sealed by no seal.
    const sealer2 = await connect('sealer_role', 'sealer-pw');
    let removed: string;
    try {
      await sealer2.query('BEGIN');
      const [mine] = (await sealer2.query(`SELECT k.* FROM audit_log_check_month($1::date) AS k`, [first(3)])).rows;
      removed = await sealer2
        .query(
          `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from, retention_month, retention_rows, retention_erasures)
           SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, $2, now(), hash, key_id, signature, entry_auth_from, $1::date, $3, $4
           FROM audit_seal ORDER BY seq DESC LIMIT 1`,
          [first(3), mine.marked, mine.n, mine.erasures],
        )
        .then(() => sealer2.query('SELECT audit_log_retire_month($1::date, 2)', [first(3)]))
        .then(() => sealer2.query('COMMIT'))
        .then(
          () => 'removed',
          (error: Error) => `refused: ${error.message}`,
        );
    } finally {
      await sealer2.query('ROLLBACK');
      await sealer2.end();
    }
    const [{ kept }] = await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(3)]);
    expect({ removed, kept }).toEqual({ removed: expect.stringMatching(/^refused/), kept: true });
    await app.get(AuditSealer).sealNow();
    expect((await counts(3)).check).toEqual({ n: '21', unsealed: '0', left_out: '0' });
  }, 90_000);

  it('refuses a seal whose horizon lies past a running transaction, so that its later row is sealed, not taken for a backdated one', async () => {
    const writer = await connect();
    const sealer = await connect('sealer_role', 'sealer-pw');
    let recorded: string;
    try {
      await writer.query('BEGIN');
      const [{ tx }] = (await writer.query(`SELECT pg_current_xact_id()::text AS tx`)).rows as { tx: string }[];
      await sql(`SELECT pg_current_xact_id()`);
      const [{ last }] = (await sql(`SELECT last_tx::text AS last FROM audit_seal ORDER BY seq DESC LIMIT 1`)) as { last: string }[];
      recorded = await insertSeal(sealer, last, String(BigInt(tx) + 1n));
      await insertRow(writer, 2);
      await writer.query('COMMIT');
    } finally {
      await sealer.end();
      await writer.end();
    }
    expect(recorded).toMatch(/has not ended: refused$/);
    await app.get(AuditSealer).sealNow();
    expect(await counts(2)).toEqual({
      whole: { n: '6', unsealed: '0', left_out: '0' },
      check: { n: '6', unsealed: '0', left_out: '0' },
    });
  }, 90_000);

  it("refuses a seal whose range ends at its own transaction's id (the rows that transaction writes after it)", async () => {
    const client = await connect();
    let recorded: string;
    try {
      await client.query('BEGIN');
      const [{ tx }] = (await client.query(`SELECT pg_current_xact_id()::text AS tx`)).rows as { tx: string }[];
      await sql(`SELECT pg_current_xact_id()`);
      await client.query(`SET CONSTRAINTS audit_seal_months IMMEDIATE`);
      recorded = await insertSeal(client, tx, tx);
      if (recorded === 'recorded') await client.query('COMMIT');
    } finally {
      await client.query('ROLLBACK');
      await client.end();
    }
    expect(recorded).toMatch(/has not ended: refused$/);
  }, 90_000);

  it('records the seals the sealer makes while transactions of the application run, and counts their rows once they commit', async () => {
    await insertRowsAgo(db, database, 1, 1);
    const writer = await connect();
    const [{ before }] = (await sql(`SELECT max(seq)::int AS before FROM audit_seal`)) as { before: number }[];
    try {
      await writer.query('BEGIN');
      await insertRow(writer, 1);
      // The sealer seals the committed row while the writer's transaction runs: its horizon stops below that transaction.
      await app.get(AuditSealer).sealNow();
      await writer.query('COMMIT');
    } finally {
      await writer.end();
    }
    const [{ after }] = (await sql(`SELECT max(seq)::int AS after FROM audit_seal`)) as { after: number }[];
    expect(after).toBe(before + 1);
    expect(await counts(1)).toEqual({
      whole: { n: '7', unsealed: '1', left_out: '0' },
      check: { n: '7', unsealed: '1', left_out: '0' },
    });
    await app.get(AuditSealer).sealNow();
    expect((await counts(1)).check).toEqual({ n: '7', unsealed: '0', left_out: '0' });
  }, 90_000);
});
