import { type INestApplication } from '@nestjs/common';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_EVENTS, AUDIT_MIGRATIONS, AuditRetention, AuditSealer } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { sealingKeys, startSealingApp, verify, witnessText } from './support/integrity';
import { monthsAgo, partitionAgo } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Retention of the legacy partition whole (issue 21): an install that migrated from the plain
// table keeps its old rows in audit_log_legacy, FROM (MINVALUE) TO (<bound>). Asked for
// (--legacy), once the bound is out of the window, no legal-hold month inside it and every row in
// it sealed, it goes by DETACH + DROP through the owner's SECURITY DEFINER function, recorded by a
// signed checkpoint naming its range and an audit.retained line; audit-verify stays clean across
// it and names a legacy partition dropped without one.
const ago = monthsAgo;
/** The legacy bound: the first of the month six months back. */
const BOUND = 6;

/** Migrates `database` from a plain table filled before each step: rows with no tx, rows with one, then the partitions. */
async function filledLegacyTrail(db: TestPostgres, database: string): Promise<void> {
  const integrity = AUDIT_MIGRATIONS.findIndex((m) => m.name === 'AuditIntegrity1764300000000');
  const partitions = AUDIT_MIGRATIONS.findIndex((m) => m.name === 'AuditPartitions1765000000000');
  const steps = [AUDIT_MIGRATIONS.slice(0, integrity), AUDIT_MIGRATIONS.slice(integrity, partitions), AUDIT_MIGRATIONS.slice(partitions)];
  for (const [i, step] of steps.entries()) {
    const source = new DataSource({ type: 'postgres', url: db.url(database), migrations: [...(step as never[])] });
    await source.initialize();
    try {
      if (i === 2) {
        await source.query(
          `ALTER TABLE audit_log ADD CONSTRAINT audit_log_legacy_bound CHECK (occurred_at < '${ago(BOUND).start}') NOT VALID`,
        );
        await source.query(`ALTER TABLE audit_log VALIDATE CONSTRAINT audit_log_legacy_bound`);
      }
      await source.runMigrations();
      if (i < 2) {
        // Two rows of a plain table from before integrity (no tx), three from after (nine and eight months back).
        await source.query(
          `INSERT INTO audit_log (id, occurred_at, action, outcome)
           SELECT gen_random_uuid(), $1::timestamptz + make_interval(hours => n), 'nda_created', 'success' FROM generate_series(1, $2::int) AS n`,
          [ago(9 - i).start, 2 + i],
        );
      }
    } finally {
      await source.destroy();
    }
  }
  for (let k = BOUND; k >= 1; k--) {
    await db.query(
      `CREATE TABLE ${partitionAgo(k)} PARTITION OF audit_log FOR VALUES FROM ('${ago(k).start}') TO ('${ago(k).end}')`,
      [],
      database,
    );
  }
}

describe('retention of the legacy partition whole', () => {
  const database = 'retention_legacy';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const retainedLines: string[] = [];

  const sql = (text: string, parameters: unknown[] = [], on = database) => db.query(text, parameters, on);
  const seal = () => app.get(AuditSealer).sealNow();
  const retention = async (user: 'postgres' | 'app_role', ...args: string[]) =>
    retentionOn(user === 'postgres' ? db.url(database) : db.url(database, 'app_role', 'app-role-pw'), ...args);
  const retentionOn = async (url: string, ...args: string[]) => {
    const out: string[] = [];
    const code = await runRetention(
      ['--url', url, '--signing-key', join(dir, 'seal.key'), ...args],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retainedLines.push(line) : out.push(line)),
      },
    );
    return { code, out, legacy: out.find((line) => line.includes('(audit_log_legacy)')) };
  };
  const witness = () => {
    writeFileSync(join(dir, 'witness.log'), witnessText(stderr) + retainedLines.map((line) => `${line}\n`).join(''));
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    return join(dir, 'witness.log');
  };
  const verifyAll = (on = database) => verify(db.url(on), '--witness', witness(), '--public-key', join(dir, 'seal.pub'));
  const verifyArchive = (path: string) => verify('', '--archive', path, '--witness', witness(), '--public-key', join(dir, 'seal.pub'));
  const legacyAttached = async () =>
    (
      await sql(
        `SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'audit_log'::regclass AND inhrelid = to_regclass('audit_log_legacy')`,
      )
    )[0].n === 1;
  const sealCount = async () => (await sql('SELECT count(*)::int AS n FROM audit_seal'))[0].n as number;
  const insertAgo = (k: number, count: number) =>
    sql(
      `INSERT INTO audit_log (id, occurred_at, action, outcome)
       SELECT gen_random_uuid(), $1::timestamptz + make_interval(hours => 12 + n), 'nda_created', 'success' FROM generate_series(1, $2::int) AS n`,
      [ago(k).start, count],
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-retention-legacy-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await filledLegacyTrail(db, database);
    await sql(`CREATE ROLE app_role LOGIN PASSWORD 'app-role-pw'`);
    await sql(`GRANT INSERT, SELECT ON audit_log, audit_seal TO app_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer) TO app_role`);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    await insertAgo(5, 2);
    await seal();
    expect(await sql(`SELECT count(*)::int AS n, count(tx)::int AS with_tx FROM audit_log_legacy`)).toEqual([{ n: 5, with_tx: 3 }]);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stays unless asked, within the window, or with a legal-hold month inside its range; a dry run says what would go, and changes nothing', async () => {
    const seals = await sealCount();
    const range = `rows before ${ago(BOUND).month}`;
    expect((await retention('postgres', '--months', `${BOUND}`, '--dry-run')).legacy).toBe(
      `KEPT legacy (audit_log_legacy): the legacy partition (${range}) is out of the window; it goes whole only when asked (audit-retention --legacy, or the option retention.legacy)`,
    );
    expect((await retention('postgres', '--months', `${BOUND + 1}`, '--legacy', '--dry-run')).legacy).toBe(
      `KEPT legacy (audit_log_legacy): the legacy partition (${range}) is within the retention window (${BOUND + 1} months: only rows before ${ago(BOUND + 1).month} go)`,
    );
    expect((await retention('postgres', '--months', `${BOUND}`, '--legacy', '--legal-hold', ago(8).month, '--dry-run')).legacy).toBe(
      `KEPT legacy (audit_log_legacy): legal hold: ${ago(8).month} inside the legacy partition (${range})`,
    );
    // A hold on a month after the bound is no hold on the legacy rows.
    const dry = await retention('postgres', '--months', `${BOUND}`, '--legacy', '--legal-hold', ago(5).month, '--dry-run');
    expect(dry.legacy).toMatch(new RegExp(`^WOULD_RETIRE legacy \\(audit_log_legacy\\): 5 rows, sealed by seals 1 \\(${range}\\)$`));
    expect(dry.out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^audit-retention \(dry run\): 1 months would go, \d+ partitions stay; nothing was changed$/),
      ]),
    );
    expect(dry.code).toBe(0);
    expect(await legacyAttached()).toBe(true);
    expect(await sealCount()).toBe(seals);
    expect(retainedLines).toEqual([]);
  });

  it('stays while a row in it is not sealed yet, or is not the row its seal sealed', async () => {
    await insertAgo(7, 1);
    const late = await retention('postgres', '--months', `${BOUND}`, '--legacy');
    expect(late.legacy).toBe('KEPT legacy (audit_log_legacy): not wholly sealed: 1 rows after the newest seal');
    await seal();
    const [{ id, action }] = await sql(`SELECT id::text AS id, action FROM audit_log_legacy WHERE tx IS NULL ORDER BY id LIMIT 1`);
    const change = (to: string) =>
      sql(
        `BEGIN; SET LOCAL session_replication_role = replica; UPDATE audit_log_legacy SET action = '${to}' WHERE id = '${id as string}'; COMMIT`,
      );
    await change('nda_deleted');
    const changed = await retention('postgres', '--months', `${BOUND}`, '--legacy');
    expect(changed.legacy).toBe(
      'KEPT legacy (audit_log_legacy): not wholly sealed: 1 rows in sealed ranges that no seal sealed (forged or invalid: see audit-verify)',
    );
    await change(action as string);
    expect(await legacyAttached()).toBe(true);
    expect(retainedLines).toEqual([]);
  });

  it('the application role may not run the function, and its run keeps the legacy partition and says why', async () => {
    const role = new Client({ connectionString: db.url(database, 'app_role', 'app-role-pw') });
    await role.connect();
    try {
      await expect(role.query('SELECT audit_log_retire_legacy(6)')).rejects.toThrow(
        /permission denied for function audit_log_retire_legacy/,
      );
      await expect(role.query('DROP TABLE audit_log_legacy')).rejects.toThrow(/must be owner/);
    } finally {
      await role.end();
    }
    // Nor write a checkpoint of the legacy partition that removes nothing (the triggers on audit_seal).
    const lastDay = new Date(Date.parse(ago(BOUND).start) - 86_400_000).toISOString().slice(0, 10);
    const forge = async (day: string) => {
      const client = new Client({ connectionString: db.url(database, 'app_role', 'app-role-pw') });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from, retention_month, retention_rows)
           SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, ''::bytea, now(), hash, key_id, signature, entry_auth_from, $1::date, 0
           FROM audit_seal ORDER BY seq DESC LIMIT 1`,
          [day],
        );
        await client.query('COMMIT');
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
        await client.end();
      }
    };
    await expect(forge(lastDay)).rejects.toThrow(
      'the retention checkpoint of the legacy partition was committed, the partition still attached: only audit_log_retire_legacy removes it',
    );
    await expect(forge(`${ago(BOUND + 1).month}-15`)).rejects.toThrow(/^no legacy partition of audit_log ends at/);
    const run = await retention('app_role', '--months', `${BOUND}`, '--legacy');
    expect(run.legacy).toMatch(/^KEPT legacy \(audit_log_legacy\): this role may not run "public"\.audit_log_retire_legacy\(integer\) /);
    expect(run.code).toBe(0);
    expect(await legacyAttached()).toBe(true);
  });

  it('the function refuses, even for the owner, without its checkpoint or within the window', async () => {
    await expect(sql('SELECT audit_log_retire_legacy($1)', [BOUND + 1])).rejects.toThrow(
      `the legacy partition holds rows up to ${ago(BOUND + 1).month}, within the retention window of ${BOUND + 1} months`,
    );
    await expect(sql('SELECT audit_log_retire_legacy($1)', [BOUND])).rejects.toThrow(
      `the newest row of audit_seal must be the retention checkpoint of the legacy partition (rows before ${ago(BOUND).month})`,
    );
    // A month's checkpoint is not the legacy partition's, nor the other way round.
    await expect(sql(`SELECT audit_log_retire_month($1::date, $2)`, [`${ago(BOUND + 1).month}-01`, BOUND])).rejects.toThrow(
      /no partition of audit_log holds exactly the month/,
    );
    expect(await legacyAttached()).toBe(true);
  });

  it('audit-archive --month legacy writes the range; audit-verify --archive checks it offline and names a tampered copy', async () => {
    const out: string[] = [];
    const code = await runArchive(
      ['--url', db.url(database), '--month', 'legacy', '--out', join(dir, 'by-hand')],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => out.push(line),
      },
    );
    const mark = `legacy..${ago(BOUND + 1).month}`;
    expect(out).toContain(
      `audit-archive: ${mark} archived; check it with audit-verify --archive ${join(dir, 'by-hand', `audit-${mark}.seals.json`)}`,
    );
    expect(code).toBe(0);
    const report = await verifyArchive(join(dir, 'by-hand', `audit-${mark}.ndjson.gz`));
    expect(report.out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(`^archive: ${mark.replace(/\./g, '\\.')} of trail ${database}/audit_log, 6 rows of the month, seals 1–`),
        ),
      ]),
    );
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
    const rows = join(dir, 'by-hand', `audit-${mark}.ndjson.gz`);
    writeFileSync(rows, gzipSync(gunzipSync(readFileSync(rows)).toString('utf8').replace('nda_created', 'nda_deleted')));
    const tampered = await verifyArchive(rows);
    expect(tampered.anomalies.length).toBeGreaterThan(0);
    expect(tampered.code).toBe(1);
  });

  it('waits at most 1 ms for a lock: while a reader holds the table it fails this run, after its tries, and nothing changed', async () => {
    const reader = new Client({ connectionString: db.url(database) });
    await reader.connect();
    const seals = await sealCount();
    try {
      await reader.query('BEGIN; SELECT count(*) FROM audit_log');
      const run = await retention('postgres', '--months', `${BOUND}`, '--legacy');
      expect(run.legacy).toMatch(/^FAILED legacy \(audit_log_legacy\): 55P03: /);
      expect(run.code).toBe(1);
    } finally {
      await reader.query('ROLLBACK');
      await reader.end();
    }
    expect(await legacyAttached()).toBe(true);
    expect(await sealCount()).toBe(seals);
    expect(retainedLines).toEqual([]);
  }, 60_000);

  it('goes whole, as the owner, by a signed checkpoint naming its range and an audit.retained line', async () => {
    const [{ newest }] = await sql(`SELECT max(seq)::int AS newest FROM audit_seal`);
    const run = await retention('postgres', '--months', `${BOUND}`, '--legacy');
    expect(run.legacy).toBe(
      `RETIRED legacy (audit_log_legacy): 6 rows, sealed by seals 1–${newest as number} (rows before ${ago(BOUND).month}); checkpoint seal ${(newest as number) + 1}`,
    );
    expect(run.code).toBe(0);
    expect(await legacyAttached()).toBe(false);
    expect(await sql(`SELECT to_regclass('audit_log_legacy') IS NULL AS dropped`)).toEqual([{ dropped: true }]);
    const lastDay = new Date(Date.parse(ago(BOUND).start) - 86_400_000).toISOString().slice(0, 10);
    expect(
      await sql(
        `SELECT seq::int, to_char(retention_month, 'YYYY-MM-DD') AS day, retention_rows::int AS rows, row_count, key_id IS NOT NULL AS signed,
           retention_covered = (SELECT hash FROM audit_seal WHERE seq = $1) AS covered
         FROM audit_seal WHERE retention_month IS NOT NULL`,
        [newest],
      ),
    ).toEqual([{ seq: (newest as number) + 1, day: lastDay, rows: 6, row_count: 0, signed: true, covered: true }]);
    expect(retainedLines.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
      expect.objectContaining({
        event: 'audit.retained',
        seq: (newest as number) + 1,
        month: `legacy..${ago(BOUND + 1).month}`,
        retainedRows: 6,
        rows: 0,
      }),
    ]);
    const again = await retention('postgres', '--months', `${BOUND}`, '--legacy');
    expect(again.legacy).toBeUndefined();
    expect(again.code).toBe(0);
  });

  it('audit-verify is clean across the checkpoint, with the witness and the public key, and sealing goes on after it', async () => {
    const first = await verifyAll();
    expect(first.anomalies).toEqual([]);
    expect(first.out).toContain(`retention: 1 checkpoints, months legacy..${ago(BOUND + 1).month} removed (6 rows), each in the chain`);
    expect(first.code).toBe(0);
    await insertAgo(0, 2);
    await seal();
    expect(await sql(`SELECT retention_month IS NULL AS seal, row_count FROM audit_seal ORDER BY seq DESC LIMIT 1`)).toEqual([
      { seal: true, row_count: 2 },
    ]);
    const again = await verifyAll();
    expect(again.anomalies).toEqual([]);
    expect(again.code).toBe(0);
  });

  it('a row dated inside the removed range, written back, is left out by the sealer as forged and named by audit-verify', async () => {
    await insertAgo(8, 1);
    const [{ id }] = await sql(`SELECT id::text AS id FROM audit_log WHERE occurred_at < $1`, [ago(BOUND).start]);
    await seal();
    expect(stderr.of(AUDIT_EVENTS.forged)).toEqual([
      expect.objectContaining({
        auditId: id,
        reason: `it is dated in ${ago(8).month}, inside the legacy partition retention removed (legacy..${ago(BOUND + 1).month}): a retired row written back`,
      }),
    ]);
    const report = await verifyAll();
    expect(report.anomalies).toEqual([`ANOMALY row_forged row ${id as string}`]);
    expect(report.code).toBe(1);
  });

  it('names a legacy partition dropped without a checkpoint', async () => {
    const other = 'retention_legacy_dropped';
    await db.createDatabase(other);
    await filledLegacyTrail(db, other);
    const sealer = await startSealingApp(db.url(other), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    try {
      await sealer.get(AuditSealer).sealNow();
    } finally {
      await sealer.close();
    }
    await sql('DROP TABLE audit_log_legacy', [], other);
    const report = await verifyAll(other);
    expect(report.anomalies).toContain('ANOMALY month_dropped month legacy');
    expect(report.out.filter((line) => line.startsWith('ANOMALY row_missing'))).toHaveLength(5);
    expect(report.code).toBe(1);
  });

  it('with --archive-dir, is archived and checked first, then goes; its archive verifies offline, held to its checkpoint', async () => {
    const other = 'retention_legacy_archived';
    await db.createDatabase(other);
    await filledLegacyTrail(db, other);
    const sealer = await startSealingApp(db.url(other), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    try {
      await sealer.get(AuditSealer).sealNow();
    } finally {
      await sealer.close();
    }
    const archives = join(dir, 'archives');
    const run = await retentionOn(db.url(other), '--months', `${BOUND}`, '--legacy', '--archive-dir', archives);
    expect(run.legacy).toMatch(
      new RegExp(
        `^RETIRED legacy \\(audit_log_legacy\\): 5 rows, sealed by seals 1 \\(rows before ${ago(BOUND).month}\\); checkpoint seal \\d+$`,
      ),
    );
    expect(run.code).toBe(0);
    const mark = `legacy..${ago(BOUND + 1).month}`;
    expect(existsSync(join(archives, `audit-${mark}.ndjson.gz`))).toBe(true);
    const report = await verifyArchive(join(archives, `audit-${mark}.seals.json`));
    expect(report.out).toEqual(
      expect.arrayContaining([expect.stringMatching(/^archive: the month held to its retention checkpoint \(seal \d+\)/)]),
    );
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
    const verified = await verifyAll(other);
    expect(verified.anomalies).toEqual([]);
    expect(verified.code).toBe(0);
  });

  it("the module's own retention removes it with retention.legacy, by the same checkpoint and an audit.retained line", async () => {
    const other = 'retention_legacy_module';
    await db.createDatabase(other);
    await filledLegacyTrail(db, other);
    const module = await startSealingApp(db.url(other), {
      integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem },
      retention: { months: BOUND, legacy: true },
    });
    try {
      // Retention's run at start holds the sealer's lock while it runs: a seal tried meanwhile finds the
      // lock taken and seals nothing. retainNow() waits for that run; it then removes the partition
      // (the sealer's first attempt sealed it) or keeps it (no seal yet).
      await module.get(AuditRetention).retainNow();
      await module.get(AuditSealer).sealNow();
      // This run removes it, or finds it gone.
      const decisions = await module.get(AuditRetention).retainNow();
      expect(decisions.filter((d) => (d.month === 'legacy' && d.action !== 'retired') || d.action === 'failed')).toEqual([]);
      expect(stderr.of(AUDIT_EVENTS.retained)).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ trail: `${other}/audit_log`, month: `legacy..${ago(BOUND + 1).month}`, retainedRows: 5 }),
        ]),
      );
    } finally {
      await module.close();
    }
    expect(await sql(`SELECT to_regclass('audit_log_legacy') IS NULL AS dropped`, [], other)).toEqual([{ dropped: true }]);
    const witnessed = join(dir, 'module-witness.log');
    writeFileSync(witnessed, stderr.lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
    const report = await verify(db.url(other), '--witness', witnessed, '--public-key', join(dir, 'seal.pub'));
    expect(report.out).toContain(`retention: 1 checkpoints, months legacy..${ago(BOUND + 1).month} removed (5 rows), each in the chain`);
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
  });
});
