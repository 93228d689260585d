import { type INestApplication, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditLog, AuditModule, type AuditModuleOptions, AuditRetention, AuditSealer, AuditService } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { sealingKeys, verify } from './support/integrity';
import { monthsAgo as ago, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The sealer on credentials of its own (integrity.sealerDatabaseUrl), with the grants of
// docs/INTEGRITY.md, "Roles": the app's role may INSERT and SELECT audit_log and only SELECT
// audit_seal; the sealer's role may INSERT audit_seal and EXECUTE audit_log_retire_month. The
// attack retention-app-role-seal shows for a same-role deployment (a forged row, a made-up link
// naming it, the month retired) now stops at the link: the month and the forged row stay.
describe('the sealer on credentials of its own', () => {
  const database = 'sealer_roles';
  const keys = sealingKeys();
  const entryKey = randomBytes(32).toString('base64');
  const APP = { user: 'app_role', password: 'app-role-pw' };
  const SEALER = { user: 'sealer_role', password: 'sealer-role-pw' };
  const READER = { user: 'reader_role', password: 'reader-role-pw' };
  let db: TestPostgres;
  let app: INestApplication | undefined;
  let stderr: StderrCapture;
  let warn: jest.SpyInstance;
  let dir: string;

  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const url = (role: { user: string; password: string }) => db.url(database, role.user, role.password);
  const total = async () => (await sql('SELECT count(*)::int AS n FROM audit_log'))[0].n as number;
  const sealedRows = async () =>
    (await sql('SELECT (coalesce(sum(row_count), 0) - coalesce(sum(retention_rows), 0))::int AS n FROM audit_seal'))[0].n as number;
  const asRole = async <T>(role: { user: string; password: string }, work: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: url(role) });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  const refusal = (work: Promise<unknown>) =>
    work.then(
      () => 'done',
      (error: { code?: string }) => error.code,
    );
  const start = async (appUrl: string, audit: AuditModuleOptions): Promise<INestApplication> => {
    @Module({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: appUrl, entities: [AuditLog] }),
        AuditModule.forRoot({ auditHttp: false, ...audit }),
      ],
    })
    class SealerRolesModule {}
    const moduleRef = await Test.createTestingModule({ imports: [SealerRolesModule] }).compile();
    const started = moduleRef.createNestApplication({ logger: false });
    await started.init();
    await partitionsChecked(started);
    return started;
  };
  const integrity = (sealerDatabaseUrl: string) => ({
    enabled: true,
    intervalMs: 600_000,
    signingKey: keys.privatePem,
    entryKeys: [{ id: 'k1', secret: entryKey }],
    sealerDatabaseUrl,
  });
  const warnings = () => warn.mock.calls.map((call) => String(call[0]));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-sealer-roles-'));
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 6);
    // The statements of docs/INTEGRITY.md, "Roles".
    for (const role of [APP, SEALER, READER]) await sql(`CREATE ROLE ${role.user} LOGIN PASSWORD '${role.password}'`);
    await sql(`GRANT INSERT, SELECT ON audit_log TO app_role`);
    await sql(`GRANT SELECT ON audit_seal TO app_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) TO app_role`);
    await sql(`GRANT SELECT ON audit_log TO sealer_role`);
    await sql(`GRANT INSERT, SELECT ON audit_seal TO sealer_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer) TO sealer_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_check_month(date) TO sealer_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_check_month_chunk(date, bigint, uuid, bigint, uuid) TO sealer_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_month_recorded(date) TO sealer_role`);
    await sql(`GRANT SELECT ON audit_log, audit_seal TO reader_role`);
    warn = jest.spyOn(Logger.prototype, 'warn');
    stderr = new StderrCapture();
    app = await start(url(APP), {
      integrity: integrity(url(SEALER)),
      retention: { months: 2, legalHold: [ago(4).month], intervalMs: 86_400_000 },
    });
    for (const k of [4, 0]) {
      for (let i = 1; i <= 2; i++) {
        await app.get(AuditService).log({
          action: 'profile_updated',
          entityType: 'Profile',
          entityId: `p-${k}-${i}`,
          userId: 'dee',
          occurredAt: new Date(new Date(ago(k).start).getTime() + i * 3_600_000),
        });
      }
    }
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    warn?.mockRestore();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('seals as its own role, applies retention as it, and the trail verifies clean; no warning', async () => {
    const running = app as INestApplication;
    await eventually(async () => {
      await running.get(AuditSealer).sealNow();
      return (await sealedRows()) === 4 && (await total()) === 4;
    });
    // The run at start may have removed the empty months already: what counts is what is left.
    const decisions = await running.get(AuditRetention).retainNow();
    expect(decisions.filter((d) => d.action === 'failed')).toEqual([]);
    const kept = async (k: number) => (await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(k)]))[0].kept as boolean;
    expect([await kept(6), await kept(5), await kept(4), await kept(3)]).toEqual([false, false, true, false]);
    // Each month once; the order is not promised across runs (the run at start may find the
    // sealer's lock held for a month and remove it at this later run, after a later month).
    expect(
      stderr
        .of(AUDIT_EVENTS.retained)
        .map((line) => line.month as string)
        .sort(),
    ).toEqual([ago(6).month, ago(5).month, ago(3).month]);
    expect(stderr.of(AUDIT_EVENTS.sealFailed)).toEqual([]);
    const witness = join(dir, 'witness.log');
    writeFileSync(
      witness,
      stderr.lines
        .filter((line) => line.event === AUDIT_EVENTS.sealed || line.event === AUDIT_EVENTS.retained)
        .map((line) => `${JSON.stringify(line)}\n`)
        .join(''),
    );
    const report = await verify(url(READER), '--witness', witness, '--public-key', join(dir, 'seal.pub'), '--entry-key', `k1:${entryKey}`);
    expect({ code: report.code, anomalies: report.anomalies }).toEqual({ code: 0, anomalies: [] });
    expect(warnings().filter((line) => line.includes('AUDIT_SEALER'))).toEqual([]);
  }, 90_000);

  it('refuses the app role the made-up link and the retirement: the month with the forged row stays', async () => {
    const forgedId = await asRole(APP, async (role) => {
      const { rows } = await role.query<{ id: string }>(
        `INSERT INTO audit_log (id, occurred_at, action, outcome, user_id) VALUES (gen_random_uuid(), $1::timestamptz + interval '5 hours', 'nda_signed', 'success', 'mallory') RETURNING id::text AS id`,
        [ago(4).start],
      );
      return rows[0].id;
    });
    const steps = await asRole(APP, async (role) => ({
      link: await refusal(
        role.query(
          `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from)
           SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, manifest, now(), $1::bytea, key_id, signature, entry_auth_from
           FROM audit_seal ORDER BY seq DESC LIMIT 1`,
          [randomBytes(32)],
        ),
      ),
      retire: await refusal(role.query(`SELECT audit_log_retire_month($1::date, 2)`, [`${ago(4).month}-01`])),
    }));
    expect(steps).toEqual({ link: '42501', retire: '42501' });
    expect(await sql(`SELECT count(*)::int AS n FROM ${partitionAgo(4)} WHERE id = $1::uuid`, [forgedId])).toEqual([{ n: 1 }]);
    const report = await verify(url(READER), '--public-key', join(dir, 'seal.pub'), '--entry-key', `k1:${entryKey}`);
    expect(report.code).toBe(1);
    expect(report.out.join('\n')).toContain(forgedId);
  }, 90_000);

  it('warns when the app role can still insert seals, and names the privilege a sealer role lacks', async () => {
    await app?.close();
    app = undefined;
    warn.mockClear();
    stderr.clear();
    // The app on the table owner's credentials (INSERT on audit_seal), the sealer on a role that may only read.
    app = await start(db.url(database), { integrity: integrity(url(READER)) });
    await app.get(AuditSealer).sealNow();
    await eventually(() => stderr.of(AUDIT_EVENTS.sealFailed).length > 0 && warnings().some((line) => line.includes('AUDIT_SEALER')));
    expect(warnings().filter((line) => line.includes('AUDIT_SEALER'))).toEqual([
      expect.stringMatching(/^AUDIT_SEALER_ROLE_SHARED: .*INSERT on .*audit_seal/),
    ]);
    const failure = stderr.of(AUDIT_EVENTS.sealFailed)[0] as unknown as { error: { code: string; message: string } };
    expect(failure.error.code).toBe('AUDIT_SEALER_PRIVILEGE');
    expect(failure.error.message).toMatch(/INSERT on .*audit_seal/);
    expect(failure.error.message).not.toContain('reader-role-pw');
  }, 90_000);
});
