import { type INestApplication } from '@nestjs/common';
import { AuditSealer } from '../src/audit';
import { encodeRetained } from '../src/audit/lifecycle/checkpoint';
import { MANIFEST_ENTRY_BYTES, readManifest } from '../src/audit/integrity/seal';
import { startSealingApp } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The database's own check, with no retention code in front of it: a superuser copies a sealed row of
// a kept month into an empty month that may go (same id and tx, another occurred_at), and a
// checkpoint marking the original's manifest entry is written for that month. Matched by id alone,
// audit_log_retire_month took the copy for the sealed row and dropped the month, and the checkpoint
// vouched for an id whose row is still in the kept month. A key (tx, id) found in two partitions now
// counts as a row no seal sealed.
describe('audit_log_retire_month and a sealed row copied into the month that goes', () => {
  const database = 'db_copied_row';
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000 } });
    await insertRowsAgo(db, database, 1, 3);
    await app.get(AuditSealer).sealNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('refuses the month: the copy is a row no seal sealed, and the partition stays', async () => {
    const [{ id }] = await sql(`SELECT id::text AS id FROM ${partitionAgo(1)} ORDER BY id LIMIT 1`);
    const [seal] = await sql(`SELECT seq::int AS seq, manifest FROM audit_seal WHERE retention_month IS NULL ORDER BY seq DESC LIMIT 1`);
    const at = readManifest(seal.manifest as Buffer).get(id as string) as number;
    const entries = (seal.manifest as Buffer).length / MANIFEST_ENTRY_BYTES;
    const bitmap = Buffer.alloc(Math.ceil(entries / 8));
    const bit = (at - 16) / MANIFEST_ENTRY_BYTES;
    bitmap[bit >> 3] |= 128 >> (bit & 7);
    const month = monthsAgo(3);
    await sql(
      `BEGIN; SET LOCAL session_replication_role = replica;
       INSERT INTO audit_log (id, tx, occurred_at, action, outcome, recorded_at)
         SELECT id, tx, '${month.start}'::timestamptz + interval '20 hours', action, outcome, recorded_at FROM audit_log WHERE id = '${id as string}';
       COMMIT`,
    );
    const client = await db.connect(database);
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash,
             entry_auth_from, retention_month, retention_rows, retention_covered, retention_erasures)
           SELECT s.seq + 1, s.version, s.hash, s.last_tx, s.last_id, s.horizon, 0, s.root, $1, now(), sha256(s.hash),
             s.entry_auth_from, $2::date, 1, s.hash, '{"erased": {}, "entries": {}}'
           FROM audit_seal AS s ORDER BY s.seq DESC LIMIT 1`,
        [encodeRetained(new Map([[seal.seq as number, bitmap]])), `${month.month}-01`],
      );
      const retire = async () => {
        await client.query('SELECT audit_log_retire_month($1::date, 2)', [`${month.month}-01`]);
        await client.query('COMMIT');
      };
      await expect(retire()).rejects.toThrow(/holds 1 rows that no seal sealed/);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(3)])).toEqual([{ kept: true }]);
    expect(await sql(`SELECT count(*)::int AS checkpoints FROM audit_seal WHERE retention_month IS NOT NULL`)).toEqual([
      { checkpoints: 0 },
    ]);
  }, 90_000);
});
