import { type INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AuditSealer, AuditSealMonths1766800000000 } from '../src/audit';
import { sealingKeys, startSealingApp } from './support/integrity';
import { insertRowsAgo, trailWithPastMonths } from './support/past-months';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The migration of AuditSealMonths1766800000000 on a filled table (docs/LIFECYCLE.md, "The
// migration") lets log() write while it records the seals already made (the whole sealed table read
// and hashed): that reading takes ACCESS SHARE only, and the partial index of erased rows is made
// after it, ON ONLY the parent with each partition's index (built beforehand here, as the docs
// advise) attached. The recording is paused on a row lock, so that the test reads the lock state,
// not a clock.
describe('retention: the seal-months migration on a filled table, its indexes built beforehand', () => {
  const database = 'retention_months_migration';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 3);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    await insertRowsAgo(db, database, 3, 200);
    await insertRowsAgo(db, database, 2, 200);
    await app.get(AuditSealer).sealNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('lets a row be written while the migration records the seals already made', async () => {
    // The deployment before the migration: seals not recorded, the partial index built per partition as the docs advise.
    await sql(`DROP INDEX audit_log_erased_idx`);
    await sql(`DELETE FROM audit_seal_recorded`);
    const parts =
      (await sql(`SELECT c.oid::regclass::text AS part, c.relname AS name FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
      WHERE h.inhparent = 'audit_log'::regclass`)) as { part: string; name: string }[];
    for (const { part, name } of parts) {
      await sql(`CREATE INDEX CONCURRENTLY ${name}_erased_idx ON ${part} (id) WHERE personal LIKE '{"erased":%'`);
    }
    // A session that holds seal 1's record key: the migration's recording of seal 1 waits on it (its locks taken by then).
    const pause = new Client({ connectionString: db.url(database) });
    await pause.connect();
    await pause.query('BEGIN');
    await pause.query(`INSERT INTO audit_seal_recorded (seq) VALUES (1)`);
    const source = new DataSource({ type: 'postgres', url: db.url(database) });
    await source.initialize();
    const runner = source.createQueryRunner();
    await runner.startTransaction();
    const [{ pid }] = (await runner.query(`SELECT pg_backend_pid() AS pid`)) as { pid: number }[];
    const migrating = new AuditSealMonths1766800000000().up(runner).then(
      () => 'done',
      (error: Error) => error.message,
    );
    const writer = new Client({ connectionString: db.url(database) });
    await writer.connect();
    let written: string;
    try {
      // Wait until the migration is in the recording (waiting on the paused session's transaction).
      let recording = false;
      for (let i = 0; i < 600 && !recording; i++) {
        const [row] = (await sql(
          `SELECT wait_event_type = 'Lock' AND wait_event = 'transactionid' AS waiting FROM pg_stat_activity WHERE pid = $1`,
          [pid],
        )) as { waiting: boolean }[];
        recording = row?.waiting === true;
        if (!recording) await sleep(50);
      }
      expect(recording).toBe(true);
      // log()'s insert, given a generous wait: the migration's stated cost is the index build, done beforehand here.
      await writer.query(`SET lock_timeout = '3s'`);
      written = await writer
        .query(`INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), now(), 'nda_created', 'success')`)
        .then(
          () => 'written',
          (error: Error) => `refused: ${error.message}`,
        );
    } finally {
      await pause.query('ROLLBACK');
      await pause.end();
      expect(await migrating).toBe('done');
      await runner.commitTransaction();
      await runner.release();
      await source.destroy();
      await writer.end();
    }
    expect(written).toBe('written');
    // The index the migration made is valid, its partitions' being those built beforehand (attached, not built again).
    const [{ valid }] = await sql(`SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'audit_log_erased_idx'::regclass`);
    const attached = (await sql(
      `SELECT i.inhrelid::regclass::text AS name FROM pg_inherits i WHERE i.inhparent = 'audit_log_erased_idx'::regclass ORDER BY 1`,
    )) as {
      name: string;
    }[];
    expect({ valid, attached: attached.map((a) => a.name) }).toEqual({
      valid: true,
      attached: parts.map((p) => `${p.name}_erased_idx`).sort(),
    });
  }, 90_000);
});
