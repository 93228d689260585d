import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { LEAF_FIELDS, LEAF_SQL } from '../src/audit/integrity/row-encoding';
import { encodeRetained } from '../src/audit/lifecycle/checkpoint';
import { retentionErasures } from '../src/audit/lifecycle/checkpoint-erasures';
import { analyzeMonth, sealHeads } from '../src/audit/lifecycle/month-analysis';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { eventually } from './support/app';
import { sealingKeys, startSealingApp, verify, witnessText } from './support/integrity';
import { monthsAgo as ago, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A deployment where the sealer runs as the application's role (no integrity.sealerDatabaseUrl),
// so that role holds INSERT on audit_log and audit_seal and EXECUTE on the retire function, and no
// key. The database cannot check a signature, so a link the role makes up (its manifest naming a
// row the module never wrote, another seal's signature copied) counts as a seal to
// audit_log_retire_month, and the month holding that row can go (docs/LIFECYCLE.md states this
// limit of a shared role). What holds: audit-verify, with the public key, names the made-up link,
// and the module's own retention of an empty month stays clean. The sealer on a role of its own
// closes it: sealer-credentials shows the same attack refused at the link.
describe('retention and the application role, when the sealer shares it', () => {
  const database = 'ownseal';
  const keys = sealingKeys();
  const entryKey = randomBytes(32).toString('base64');
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const retainedLines: string[] = [];

  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const total = async () => (await sql('SELECT count(*)::int AS n FROM audit_log'))[0].n as number;
  const sealedRows = async () =>
    (await sql('SELECT (coalesce(sum(row_count), 0) - coalesce(sum(retention_rows), 0))::int AS n FROM audit_seal'))[0].n as number;
  const sealAll = async () => {
    const n = await total();
    await eventually(async () => {
      await app.get(AuditSealer).sealNow();
      return (await sealedRows()) === n;
    });
  };
  const asRole = async <T>(work: (role: Client) => Promise<T>): Promise<T> => {
    const role = new Client({ connectionString: db.url(database, 'app_role', 'app-role-pw') });
    await role.connect();
    try {
      return await work(role);
    } finally {
      await role.end();
    }
  };
  const logRows = async (k: number, userId: string, count: number) => {
    for (let i = 1; i <= count; i++) {
      await app.get(AuditService).log({
        action: 'profile_updated',
        entityType: 'Profile',
        entityId: `${userId}-${k}-${i}`,
        userId,
        occurredAt: new Date(new Date(ago(k).start).getTime() + i * 3_600_000),
      });
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-ownseal-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 6);
    await sql(`CREATE ROLE app_role LOGIN PASSWORD 'app-role-pw'`);
    await sql(`GRANT INSERT, SELECT ON audit_log, audit_seal TO app_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer) TO app_role`);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), {
      integrity: { intervalMs: 600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret: entryKey }] },
    });
    await logRows(4, 'dee', 2);
    await logRows(0, 'eve', 1);
    await sealAll();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('retires an empty past month and audit-verify stays clean', async () => {
    const out: string[] = [];
    const code = await runRetention(
      [
        '--url',
        db.url(database, 'app_role', 'app-role-pw'),
        '--signing-key',
        join(dir, 'seal.key'),
        '--months',
        '2',
        '--legal-hold',
        ago(4).month,
      ],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retainedLines.push(line) : out.push(line)),
      },
    );
    expect({ code, kept6: (await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(6)]))[0].kept }).toEqual({
      code: 0,
      kept6: false,
    });
    writeFileSync(join(dir, 'witness.log'), witnessText(stderr) + retainedLines.map((line) => `${line}\n`).join(''));
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    const report = await verify(
      db.url(database),
      '--witness',
      join(dir, 'witness.log'),
      '--public-key',
      join(dir, 'seal.pub'),
      '--entry-key',
      `k1:${entryKey}`,
    );
    expect({ code: report.code, anomalies: report.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 90_000);

  it('names the link the role made up to remove a month holding a row the module never wrote (the database cannot check its signature)', async () => {
    const month = `${ago(4).month}-01`;
    const forgedId = await asRole(async (role) => {
      // The intrusion: a row the module never wrote (no entry code), dated in month -4.
      const [{ id }] = (
        await role.query(
          `INSERT INTO audit_log (id, occurred_at, action, outcome, user_id) VALUES (gen_random_uuid(), $1::timestamptz + interval '5 hours', 'nda_signed', 'success', 'mallory') RETURNING id::text AS id`,
          [ago(4).start],
        )
      ).rows as { id: string }[];
      return id;
    });
    const outcome = await asRole(async (role) => {
      await role.query('BEGIN');
      try {
        const query = async (text: string, parameters?: unknown[]) =>
          (await role.query(text, parameters)).rows as Record<string, unknown>[];
        // A link sealing only the forged row: its manifest entry (id and leaf prefix), the newest
        // seal's signature copied (any non-null bytes pass: the database cannot check one).
        await query(
          `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from)
           SELECT s.seq + 1, s.version, s.hash, f.tx, f.id, f.tx + 1, 1, s.root, f.entry, now(), $2::bytea, s.key_id, s.signature, s.entry_auth_from
           FROM (SELECT * FROM audit_seal ORDER BY seq DESC LIMIT 1) AS s,
             (SELECT l.tx, l.id, uuid_send(l.id) || substr(${LEAF_SQL}, 1, 8) AS entry FROM audit_log AS l, ${LEAF_FIELDS} WHERE l.id = $1::uuid) AS f`,
          [forgedId, randomBytes(32)],
        );
        // The link commits on its own: its rows are matched to its manifest at its commit
        // (AuditSealMonths1766800000000), which finds none once the month is gone in the same transaction.
        await role.query('COMMIT');
        await role.query('BEGIN');
        const heads = await sealHeads(query, 'public.audit_seal');
        const analysis = await analyzeMonth(query, 'public.audit_log', 'public.audit_seal', heads, ago(4).start, ago(4).end);
        const carried = await retentionErasures(query, 'public.audit_log', ago(4).month);
        await query(
          `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from, retention_month, retention_rows, retention_erasures)
           SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, $2, now(), hash, key_id, signature, entry_auth_from, $1::date, $3, $4
           FROM audit_seal ORDER BY seq DESC LIMIT 1`,
          [month, encodeRetained(analysis.retained), analysis.rows, carried],
        );
        await query('SELECT audit_log_retire_month($1::date, 2)', [month]);
        await role.query('COMMIT');
        return 'month removed';
      } catch (error) {
        await role.query('ROLLBACK');
        return `refused: ${(error as Error).message}`;
      }
    });
    expect(outcome).toBe('month removed');
    const [{ seq }] = await sql(`SELECT max(seq)::int - 1 AS seq FROM audit_seal`);
    const report = await verify(db.url(database), '--public-key', join(dir, 'seal.pub'), '--entry-key', `k1:${entryKey}`);
    expect(report.code).toBe(1);
    expect(report.anomalies).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`^ANOMALY seal_\\w+ seal ${seq as number}$`))]),
    );
  }, 90_000);
});
