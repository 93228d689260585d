import { type INestApplication } from '@nestjs/common';
import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { encodeRetained } from '../src/audit/lifecycle/checkpoint';
import { retentionErasures } from '../src/audit/lifecycle/checkpoint-erasures';
import { analyzeMonth, sealHeads } from '../src/audit/lifecycle/month-analysis';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { eraseSubject, type ErasureResult } from '../src/audit/privacy/erasure';
import { eventually } from './support/app';
import { sealingKeys, startSealingApp, verify, witnessText } from './support/integrity';
import { monthsAgo as ago, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';
import { StderrCapture } from './support/stderr';

// Retention x erasure, and retention against the application role running modified code (issues
// 21 and 22): a checkpoint carries forward, under its signed hash, the erased rows and erasure
// entries of the month it retires, and the database checks it; audit-verify accounts each
// erasure exactly (rows present + rows retired = its count), whichever month its entry is in;
// and audit_log_retire_month refuses, by itself, a month holding a row that no seal sealed.
describe('retention keeps erasures accounted and refuses unsealed rows by itself', () => {
  const database = 'trust';
  const keys = sealingKeys();
  const entryKey = randomBytes(32).toString('base64');
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  let dir: string;
  let erasureA: ErasureResult;
  const retainedLines: string[] = [];

  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const total = async () => (await sql('SELECT count(*)::int AS n FROM audit_log'))[0].n as number;
  /** Rows sealed and not retired since. */
  const sealedRows = async () =>
    (await sql('SELECT (coalesce(sum(row_count), 0) - coalesce(sum(retention_rows), 0))::int AS n FROM audit_seal'))[0].n as number;
  /** Seals until every row is sealed (`forged` rows the sealer leaves out are not counted). */
  const sealAll = async (forged = 0) => {
    const n = (await total()) - forged;
    await eventually(async () => {
      await app.get(AuditSealer).sealNow();
      return (await sealedRows()) === n;
    });
  };
  const retention = async (...args: string[]) => {
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database, 'app_role', 'app-role-pw'), '--signing-key', join(dir, 'seal.key'), ...args],
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
    return verify(db.url(database), '--witness', witness, '--public-key', publicKey, '--entry-key', `k1:${entryKey}`);
  };
  /** Logs `count` rows of `userId` dated in the month `k` months back. */
  const logRows = async (k: number, userId: string, count: number) => {
    for (let i = 1; i <= count; i++) {
      await app.get(AuditService).log({
        action: 'profile_updated',
        entityType: 'Profile',
        entityId: `${userId}-${k}-${i}`,
        userId,
        ip: '203.0.113.7',
        changes: { body: { email: `${userId}@example.com` } },
        occurredAt: new Date(new Date(ago(k).start).getTime() + i * 3_600_000),
      });
    }
  };
  /** An erasure made as AuditService.erase makes it, its entry dated in the month `k` months back (an erasure of long ago). */
  const eraseDated = async (userId: string, k: number) => {
    const service = app.get(AuditService) as unknown as { normalizer: { normalize(e: object): { record: unknown } } };
    const client = new Client({ connectionString: db.url(database) });
    await client.connect();
    try {
      await client.query('BEGIN');
      const result = await eraseSubject(
        {
          query: async (text, parameters) => (await client.query(text, parameters)).rows,
          table: '"public"."audit_log"',
          normalize: (entry) =>
            service.normalizer.normalize({ ...entry, occurredAt: new Date(new Date(ago(k).start).getTime() + 20 * 3_600_000) })
              .record as ReturnType<Parameters<typeof eraseSubject>[0]['normalize']>,
          key: createSecretKey(Buffer.from(entryKey, 'base64')),
          userIdPseudonym: null,
        },
        { userId, requestedBy: 'dpo' },
      );
      await client.query('COMMIT');
      return result;
    } finally {
      await client.end();
    }
  };
  /** GET /audit/rows/:id: the row's seal status, as the read side tells it. */
  const sealOf = async (id: string) =>
    (
      (await request(app.getHttpServer()).get(`/audit/rows/${id}`).set('x-auditor', 'yes').expect(200)).body as {
        items: { seal?: { state: string; seq?: number } }[];
      }
    ).items[0]?.seal;
  /** The seq of the seal whose manifest names the row. */
  const sealSeq = async (id: string) =>
    (
      await sql(
        `SELECT seq::int AS seq FROM audit_seal WHERE retention_month IS NULL AND position(uuid_send($1::uuid) IN manifest) > 0 ORDER BY seq LIMIT 1`,
        [id],
      )
    )[0]?.seq as number | undefined;
  const asRole = async <T>(work: (role: Client) => Promise<T>): Promise<T> => {
    const role = new Client({ connectionString: db.url(database, 'app_role', 'app-role-pw') });
    await role.connect();
    try {
      return await work(role);
    } finally {
      await role.end();
    }
  };
  /**
   * What retention code modified by the application role does: in one transaction, a checkpoint
   * of month `k` chained after the newest seal (carrying a signature: the role holds the signing
   * key, and the database cannot check one), counting the partition's rows (and, where the
   * schema has them, its erasures as `erasures` says), then the function; rolled back if it passes.
   */
  const retireAsCompromisedRole = (k: number, erasures: (month: string) => Promise<string | null>) =>
    asRole(async (role) => {
      await role.query('BEGIN');
      try {
        const month = `${ago(k).month}-01`;
        const [{ has }] = (
          await role.query(
            `SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'audit_seal'::regclass AND attname = 'retention_erasures') AS has`,
          )
        ).rows as { has: boolean }[];
        const carried = has ? await erasures(month) : null;
        const query = async (text: string, parameters?: unknown[]) =>
          (await role.query(text, parameters)).rows as Record<string, unknown>[];
        const heads = await sealHeads(query, 'public.audit_seal');
        const analysis = await analyzeMonth(query, 'public.audit_log', 'public.audit_seal', heads, ago(k).start, ago(k).end);
        await role.query(
          `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from, retention_month, retention_rows${has ? ', retention_erasures' : ''})
           SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, $2, now(), hash, key_id, signature, entry_auth_from, $1::date, $3${has ? ', $4' : ''}
           FROM audit_seal ORDER BY seq DESC LIMIT 1`,
          [month, encodeRetained(analysis.retained), analysis.rows, ...(has ? [carried] : [])],
        );
        await role.query('SELECT audit_log_retire_month($1::date, 2)', [month]);
        return 'dropped';
      } finally {
        await role.query('ROLLBACK');
      }
    });
  /** The erasures of a month as the module's retention carries them forward. */
  const trueErasures = async (month: string) => {
    return retentionErasures((text, parameters) => sql(text, parameters), 'public.audit_log', month.slice(0, 7));
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-trust-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 6);
    await sql(`CREATE ROLE app_role LOGIN PASSWORD 'app-role-pw'`);
    await sql(`GRANT INSERT, SELECT ON audit_log, audit_seal TO app_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer) TO app_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO app_role`);
    stderr = new StderrCapture();
    app = (await startSealingApp(db.url(database), {
      http: { guard: AuditorHeaderGuard },
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret: entryKey }] },
    })) as INestApplication<Server>;
    // Ana: two rows in month -6, one in month -5; Bo (whom nobody erased): two in month -5; Cy: two in month -2.
    await logRows(6, 'ana', 2);
    await logRows(5, 'ana', 1);
    await logRows(5, 'bo', 2);
    await logRows(4, 'dee', 2);
    await logRows(2, 'cy', 2);
    erasureA = await app.get(AuditService).erase({ userId: 'ana', requestedBy: 'dpo' });
    expect(erasureA.erased).toBe(3);
    // Cy's erasure of long ago: its entry lies in month -3, its erased rows in month -2.
    expect((await eraseDated('cy', 3)).erased).toBe(2);
    await sealAll();
    expect((await verifyAll()).out).toContain('result: CLEAN');
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('retires a month of erased rows, and audit-verify stays clean: rows present and rows retired add up to the count', async () => {
    const { code, out } = await retention('--months', '2', '--legal-hold', [5, 4, 3].map((k) => ago(k).month).join(','));
    expect(out).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^RETIRED ${ago(6).month} .*2 rows`))]));
    expect(code).toBe(0);
    const [checkpoint] = await sql(`SELECT retention_erasures FROM audit_seal WHERE retention_month = $1::date`, [`${ago(6).month}-01`]);
    expect(JSON.parse(checkpoint.retention_erasures as string)).toEqual({ erased: { [erasureA.erasureId]: 2 }, entries: {} });
    const report = await verifyAll();
    expect(report.anomalies).toEqual([]);
    // Cy's erasure was made under a key of the test's own (the entry key's text as base64), not one verify is given.
    expect(report.out).toContain(
      "erasure: 3 rows erased under 2 erasure entries (and 2 erased rows retired); 1 erasure entries made under a pseudonym key not given, whose subjects' rows left with values are not looked for",
    );
    expect(report.code).toBe(0);
  }, 60_000);

  it('retires the month holding an erasure entry, its erased rows kept: still accounted, still clean', async () => {
    const { code, out } = await retention('--months', '2', '--legal-hold', [5, 4].map((k) => ago(k).month).join(','));
    expect(out).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^RETIRED ${ago(3).month} .*1 rows`))]));
    expect(code).toBe(0);
    const [checkpoint] = await sql(`SELECT retention_erasures FROM audit_seal WHERE retention_month = $1::date`, [`${ago(3).month}-01`]);
    const carried = JSON.parse(checkpoint.retention_erasures as string) as { erased: object; entries: Record<string, unknown> };
    expect(carried.erased).toEqual({});
    expect(Object.values(carried.entries)).toEqual([{ rows: 2, subject: expect.stringMatching(/^p1:/) }]);
    const report = await verifyAll();
    expect(report.anomalies).toEqual([]);
    expect(report.out).toContain('erasure: 3 rows erased under 1 erasure entries (and 2 erased rows, 1 erasure entries retired)');
    expect(report.code).toBe(0);
  }, 60_000);

  it('reads the seal status of rows with checkpoints in the chain, the newest link a checkpoint', async () => {
    const [{ id: kept }] = await sql(`SELECT id::text AS id FROM audit_log WHERE personal = $1`, [`{"erased":"${erasureA.erasureId}"}`]);
    expect(await sealOf(kept as string)).toEqual({ state: 'sealed', seq: await sealSeq(kept as string), sealedAt: expect.any(String) });
    await logRows(0, 'fay', 1);
    const [{ id: late }] = await sql(`SELECT id::text AS id FROM audit_log WHERE user_id = 'fay'`);
    const [{ newest }] = await sql(`SELECT retention_month IS NOT NULL AS newest FROM audit_seal ORDER BY seq DESC LIMIT 1`);
    expect(newest).toBe(true);
    expect(await sealOf(late as string)).toEqual({ state: 'unsealed' });
  }, 60_000);

  it('refuses a second call under an erasure id, and names the rows of another person marked with an erasure some of whose rows were retired', async () => {
    const bo = (await sql(`SELECT id::text AS id FROM audit_log WHERE user_id = 'bo' ORDER BY id`)).map((r) => r.id as string);
    const ana = (await sql(`SELECT id::text AS id FROM audit_log WHERE personal = $1`, [`{"erased":"${erasureA.erasureId}"}`])).map(
      (r) => r.id as string,
    );
    expect(bo).toHaveLength(2);
    expect(ana).toHaveLength(1);
    // The role that may erase cannot reuse Ana's erasure id: the database refuses a second call under it.
    await expect(
      asRole((role) => role.query(`SELECT state FROM audit_log_erase('bo', NULL, NULL, $1, false)`, [erasureA.erasureId])),
    ).rejects.toThrow(`erasure id ${erasureA.erasureId} was used already`);
    // Bo's rows marked with Ana's erasure all the same (triggers off: a superuser), as that call would have:
    // the count of its entry has had room for two since retention.
    await sql(
      `BEGIN; SET LOCAL session_replication_role = replica;
       UPDATE audit_log SET user_id = '[ERASED]', ip = '[ERASED]', personal = '{"erased":"${erasureA.erasureId}"}' WHERE user_id = 'bo'; COMMIT`,
    );
    const report = await verifyAll();
    expect(report.out.filter((line) => line.startsWith('ANOMALY')).sort()).toEqual(
      [...bo, ...ana]
        .map(
          (id) =>
            `ANOMALY row_erased_unaccounted row ${id}: one of 3 rows erased under erasure ${erasureA.erasureId} (and 2 retired), whose audit_erasure entry counts 3`,
        )
        .sort(),
    );
    expect(report.code).toBe(1);
  }, 60_000);

  it('refuses, in the database, a checkpoint that misstates the erasures of its month', async () => {
    await expect(retireAsCompromisedRole(5, async () => JSON.stringify({ erased: {}, entries: {} }))).rejects.toThrow(
      `the retention checkpoint does not carry forward the erasures of month ${ago(5).month}`,
    );
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(5)])).toEqual([{ kept: true }]);
  }, 60_000);

  it('refuses, in the database, a month holding a row that no seal sealed, whatever the code that calls it checked', async () => {
    // A forged row (no entry code) in month -4, inside a sealed range: the sealer leaves it out.
    await sql(
      `INSERT INTO audit_log (id, occurred_at, action, outcome, user_id) VALUES (gen_random_uuid(), $1::timestamptz + interval '5 hours', 'nda_signed', 'success', 'mallory')`,
      [ago(4).start],
    );
    await logRows(0, 'eve', 1);
    await sealAll(1);
    const [{ forged }] = await sql(`SELECT id::text AS forged FROM audit_log WHERE user_id = 'mallory'`);
    const [{ sealed }] = await sql(`SELECT max(seq)::int AS sealed FROM audit_seal WHERE retention_month IS NULL`);
    expect(forged).toEqual(expect.any(String));
    expect(sealed).toBeGreaterThan(0);
    // The module's own retention keeps it...
    const { out } = await retention('--months', '2', '--dry-run', '--legal-hold', ago(5).month);
    expect(out).toContain(
      `KEPT ${ago(4).month} (${partitionAgo(4)}): not wholly sealed: 1 rows in sealed ranges that no seal sealed (forged or invalid: see audit-verify)`,
    );
    // ...and the database refuses the role that skips that check and writes the checkpoint itself.
    await expect(retireAsCompromisedRole(4, trueErasures)).rejects.toThrow(`month ${ago(4).month} holds 1 rows that no seal sealed`);
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(4)])).toEqual([{ kept: true }]);
    // The read side, past the checkpoints: a row sealed after them, and the forged row.
    const [{ id: eve }] = await sql(`SELECT id::text AS id FROM audit_log WHERE user_id = 'eve'`);
    const [{ last }] = await sql(`SELECT max(seq)::int AS last FROM audit_seal WHERE retention_month IS NOT NULL`);
    const eveSeal = await sealOf(eve as string);
    expect(eveSeal).toEqual({ state: 'sealed', seq: await sealSeq(eve as string), sealedAt: expect.any(String) });
    expect(eveSeal?.seq).toBeGreaterThan(last as number);
    expect(await sealOf(forged as string)).toEqual(expect.objectContaining({ state: 'forged' }));
  }, 60_000);

  it('refuses a checkpoint that no removal of its month follows: it cannot make room in an erasure by itself', async () => {
    // Room for Bo's two rows under Ana's erasure, claimed by a checkpoint of a month the database never dropped.
    const forge = (k: number) =>
      asRole(async (role) => {
        await role.query('BEGIN');
        try {
          await role.query(
            `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from, retention_month, retention_rows, retention_erasures)
             SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, ''::bytea, now(), hash, key_id, signature, entry_auth_from, $1::date, 0, $2
             FROM audit_seal ORDER BY seq DESC LIMIT 1`,
            [`${ago(k).month}-01`, JSON.stringify({ erased: {}, entries: { [erasureA.erasureId]: { rows: 2, subject: null } } })],
          );
          await role.query('COMMIT');
        } catch (error) {
          await role.query('ROLLBACK');
          throw error;
        }
      });
    await expect(forge(5)).rejects.toThrow(`the retention checkpoint of month ${ago(5).month} was committed, its partition still attached`);
    await expect(forge(9)).rejects.toThrow(`no partition of audit_log holds exactly the month ${ago(9).month}`);
    expect(
      await sql(`SELECT count(*)::int AS n FROM audit_seal WHERE retention_month IN ($1::date, $2::date)`, [
        `${ago(5).month}-01`,
        `${ago(9).month}-01`,
      ]),
    ).toEqual([{ n: 0 }]);
  }, 60_000);
});
