import { type INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_EVENTS, AuditSealer } from '../src/audit';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { sealingKeys, startSealingApp, verify, witnessText } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A superuser (triggers off, so `tx` is kept) copies a sealed row of a kept month into a month about
// to go: same id and tx, another occurred_at, which the key (id, occurred_at) allows. Were rows found
// in their seal's manifest by id alone, retention would sign a checkpoint marking that id as removed,
// and the original could then be deleted from its kept month without audit-verify naming it.
// Retention's checkpoint marks only the rows each seal recorded of the month at its commit
// (AuditSealMonths1766800000000), so no checkpoint vouches for the copied id. The trade
// (docs/LIFECYCLE.md, docs/INTEGRITY.md): retention reads no row, so the copy itself goes with its
// month unseen by retention; audit-verify, which hashes every row, names it when run before.
describe('retention and a sealed row copied into the month that goes', () => {
  const database = 'copied_row';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const retained: string[] = [];
  let id: string;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-copied-row-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    await insertRowsAgo(db, database, 3, 3);
    await insertRowsAgo(db, database, 1, 3);
    await app.get(AuditSealer).sealNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the trade: audit-verify run before retention names the copy; retention, reading no row, removes the month with it', async () => {
    [{ id }] = (await sql(`SELECT id::text AS id FROM ${partitionAgo(1)} ORDER BY id LIMIT 1`)) as { id: string }[];
    await sql(
      `BEGIN; SET LOCAL session_replication_role = replica;
       INSERT INTO audit_log (id, tx, occurred_at, action, outcome, recorded_at)
         SELECT id, tx, '${monthsAgo(3).start}'::timestamptz + interval '20 hours', action, outcome, recorded_at FROM audit_log WHERE id = '${id}';
       COMMIT`,
    );
    const before = await verify(db.url(database), '--public-key', join(dir, 'seal.pub'));
    expect(before.anomalies.filter((a) => a.includes(id))).not.toEqual([]);
    expect(before.code).toBe(1);
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '2'],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retained.push(line) : out.push(line)),
      },
    );
    expect(code).toBe(0);
    // Counted from what the seals recorded at their commit: the 3 rows sealed in that month, not the copy put there since.
    expect(out).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`^RETIRED ${monthsAgo(3).month} .*: 3 rows, sealed by seals 1;`))]),
    );
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(3)])).toEqual([{ kept: false }]);
  }, 90_000);

  it('still, no checkpoint vouches for the copied id: the original deleted from its kept month is named', async () => {
    await sql(`BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM audit_log WHERE id = '${id}'; COMMIT`);
    const witness = join(dir, 'witness.log');
    writeFileSync(witness, witnessText(stderr) + retained.map((line) => `${line}\n`).join(''));
    const report = await verify(db.url(database), '--witness', witness, '--public-key', join(dir, 'seal.pub'));
    expect(report.anomalies.filter((a) => a.includes(id) && a.includes('row_missing'))).not.toEqual([]);
    expect(report.code).toBe(1);
  }, 90_000);
});
