import { type INestApplication } from '@nestjs/common';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AuditRetireLegacyInParts1766700000000, AuditSealer } from '../src/audit';
import { encodeRetained } from '../src/audit/lifecycle/checkpoint';
import { analyzeMonth, sealHeads } from '../src/audit/lifecycle/month-analysis';
import { applyRetention, type MonthDecision, type RetentionRun } from '../src/audit/lifecycle/retention';
import { clientQuery, fillRowsAgo, sealEverything } from './support/big-trail';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { monthsAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The legacy partition is the whole history from before the partitions: millions of rows on a
// real install, too many for one statement within retention's statement timeout, and its SHARE
// lock held for the whole of one read. It is checked in parts as a month is (made small here: a
// 300 ms bound, seals of 500 rows, 60 000 legacy rows that one statement checks in well over a
// second), by retention's code and by the database's functions, with every guarantee kept.
describe('retention of a legacy partition too big for one statement', () => {
  const database = 'legacy_parts';
  const keys = sealingKeys();
  const ROWS = 60_000;
  /** Rows of the plain table from before integrity: no `tx`, first in the sealing order. */
  const UNNUMBERED = 3;
  const TIMEOUT_MS = 300;
  /** The legacy bound: the first of the month two months back. */
  const BOUND = 2;
  const bound = `${monthsAgo(BOUND).month}-01`;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  let client: Client;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const attached = async () => (await sql(`SELECT to_regclass('audit_log_legacy') IS NOT NULL AS kept`))[0].kept as boolean;
  const asReplica = (statement: string) => sql(`BEGIN; SET LOCAL session_replication_role = replica; ${statement}; COMMIT`);

  const retain = async (more: Partial<RetentionRun>): Promise<MonthDecision | undefined> =>
    (
      await applyRetention(
        { query: clientQuery(client) },
        {
          table: 'public.audit_log',
          months: BOUND,
          legalHold: [],
          dryRun: false,
          legacy: true,
          signingKey: createPrivateKey(keys.privatePem),
          timeoutMs: TIMEOUT_MS,
          ...more,
        },
      )
    ).find((d) => d.month === 'legacy');

  /** The legacy rows in the sealing order at `at` (0 the first, -1 the last sealed one). */
  const rowAt = async (at: number) =>
    (
      await sql(
        `SELECT id::text AS id, tx::text AS tx, action FROM audit_log_legacy ORDER BY COALESCE(tx, -1) ${at < 0 ? 'DESC' : ''}, id ${at < 0 ? 'DESC' : ''} OFFSET $1 LIMIT 1`,
        [at < 0 ? -at - 1 : at],
      )
    )[0] as { id: string; tx: string | null; action: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-legacy-parts-'));
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, BOUND);
    // Rows of a plain table from before integrity have no tx (they come first in the sealing order).
    await sql(
      `INSERT INTO audit_log (id, occurred_at, action, outcome) SELECT gen_random_uuid(), $1::timestamptz + make_interval(hours => i), 'nda_created', 'success' FROM generate_series(1, $2::int) AS i`,
      [monthsAgo(9).start, UNNUMBERED],
    );
    await asReplica(`UPDATE audit_log SET tx = NULL WHERE occurred_at < '${monthsAgo(8).start}'`);
    await fillRowsAgo(db, database, 4, ROWS / 2);
    await fillRowsAgo(db, database, 3, ROWS / 2);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), {
      integrity: { enabled: true, intervalMs: 600_000, maxRowsPerSeal: 500, signingKey: keys.privatePem },
    });
    await sealEverything(() => app.get(AuditSealer).sealNow(), db, database);
    await sql('VACUUM ANALYZE audit_log');
    await sql(`CREATE ROLE app_role LOGIN PASSWORD 'app-role-pw'`);
    await sql(`GRANT INSERT, SELECT ON audit_log, audit_seal TO app_role`);
    client = new Client({ connectionString: db.url(database) });
    await client.connect();
  }, 300_000);

  afterAll(async () => {
    await client?.end();
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('says in a dry run that it would go, with all its rows, each statement within the bound', async () => {
    expect(await retain({ dryRun: true })).toEqual(expect.objectContaining({ action: 'would retire', rows: ROWS + UNNUMBERED }));
    expect(await attached()).toBe(true);
  }, 120_000);

  it('stays, named, for a changed row in the first part, a forged one in the middle and a changed one in the last; and for a row not sealed yet', async () => {
    const first = await rowAt(0);
    const middle = await rowAt(ROWS / 2);
    const last = await rowAt(-1);
    expect(first.tx).toBeNull();
    const setAction = (row: { id: string }, action: string) =>
      asReplica(`UPDATE audit_log SET action = '${action}' WHERE id = '${row.id}'`);
    await setAction(first, 'nda_deleted');
    await setAction(last, 'nda_deleted');
    // A row of no entry inside a sealed range: the tx of a sealed row, an id of its own.
    await asReplica(
      `INSERT INTO audit_log (id, tx, occurred_at, action, outcome) VALUES ('ffffffff-0000-4000-8000-000000000000', ${middle.tx as string}, '${monthsAgo(5).start}', 'nda_created', 'success')`,
    );
    try {
      for (const dryRun of [true, false]) {
        expect(await retain({ dryRun })).toEqual(
          expect.objectContaining({
            action: 'kept',
            reason: 'not wholly sealed: 3 rows in sealed ranges that no seal sealed (forged or invalid: see audit-verify)',
          }),
        );
      }
    } finally {
      await setAction(first, first.action);
      await setAction(last, last.action);
      await asReplica(`DELETE FROM audit_log WHERE id = 'ffffffff-0000-4000-8000-000000000000'`);
    }
    await sql(
      `INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), '${monthsAgo(5).start}'::timestamptz + interval '20 days', 'nda_created', 'success')`,
    );
    try {
      for (const dryRun of [true, false]) {
        expect(await retain({ dryRun })).toEqual(
          expect.objectContaining({ action: 'kept', reason: 'not wholly sealed: 1 rows after the newest seal' }),
        );
      }
    } finally {
      await sealEverything(() => app.get(AuditSealer).sealNow(), db, database);
    }
    expect(await attached()).toBe(true);
  }, 240_000);

  it("read whole, its check exceeds the bound: the database's check that adds up no parts is cut", async () => {
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL statement_timeout = '${TIMEOUT_MS}ms'`);
      await expect(client.query('SELECT * FROM audit_log_check_legacy($1::date)', [bound])).rejects.toThrow(
        'canceling statement due to statement timeout',
      );
    } finally {
      await client.query('ROLLBACK');
    }
  }, 60_000);

  it('the application role may not run the functions that check it or remove it', async () => {
    const role = new Client({ connectionString: db.url(database, 'app_role', 'app-role-pw') });
    await role.connect();
    try {
      for (const call of [
        'SELECT audit_log_check_legacy_chunk($1::date, NULL, NULL, NULL, NULL)',
        'SELECT * FROM audit_log_check_legacy($1::date)',
      ]) {
        await expect(role.query(call, [bound])).rejects.toThrow(/permission denied for function audit_log_check_legacy/);
      }
      await expect(role.query('SELECT audit_log_retire_legacy(2)')).rejects.toThrow(
        /permission denied for function audit_log_retire_legacy/,
      );
    } finally {
      await role.end();
    }
  });

  it('whoever may remove it may check it in parts: the migration, undone and run again, grants the checks to the roles granted the removal', async () => {
    await sql(`CREATE ROLE retention_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_retire_legacy(integer) TO retention_role`);
    const source = new DataSource({ type: 'postgres', url: db.url(database) });
    await source.initialize();
    const runner = source.createQueryRunner();
    const checks = `SELECT to_regprocedure('audit_log_check_legacy(date)') IS NOT NULL AS whole,
      has_function_privilege('retention_role', 'audit_log_retire_legacy(integer)', 'EXECUTE') AS removal`;
    try {
      await new AuditRetireLegacyInParts1766700000000().down(runner);
      expect(await sql(checks)).toEqual([{ whole: false, removal: true }]);
      await new AuditRetireLegacyInParts1766700000000().up(runner);
      expect(await sql(checks)).toEqual([{ whole: true, removal: true }]);
    } finally {
      await runner.release();
      await source.destroy();
    }
    expect(
      await sql(
        `SELECT has_function_privilege('retention_role', 'audit_log_check_legacy(date)', 'EXECUTE') AS whole,
           has_function_privilege('retention_role', 'audit_log_check_legacy_chunk(date, bigint, uuid, bigint, uuid)', 'EXECUTE') AS part,
           has_function_privilege('app_role', 'audit_log_check_legacy(date)', 'EXECUTE') AS app`,
      ),
    ).toEqual([{ whole: true, part: true, app: false }]);
  });

  it('adds up only parts that follow each other to its last row, the partition unchanged since: others are refused, or it is read whole', async () => {
    const keys = (await sealHeads(clientQuery(client), 'public.audit_seal')).map((h) => [String(h.last.tx ?? -1n), h.last.id] as const);
    const part = async (after: readonly [string, string] | null, upto: readonly [string, string] | null) =>
      Number(
        (
          await client.query('SELECT audit_log_check_legacy_chunk($1::date, $2::bigint, $3::uuid, $4::bigint, $5::uuid) AS n', [
            bound,
            ...(after ?? [null, null]),
            ...(upto ?? [null, null]),
          ])
        ).rows[0].n,
      );
    const check = async () =>
      (await client.query('SELECT n::int, unsealed::int, left_out::int FROM audit_log_check_legacy($1::date)', [bound])).rows[0] as Record<
        string,
        number
      >;
    const inTransaction = async (work: () => Promise<void>) => {
      await client.query('BEGIN');
      try {
        await work();
      } finally {
        await client.query('ROLLBACK');
      }
    };
    const rows = (await sql(`SELECT count(*)::int AS rows FROM audit_log_legacy`))[0].rows as number;
    await inTransaction(async () => {
      const counts = [await part(null, keys[0]), await part(keys[0], keys[keys.length - 1]), await part(keys[keys.length - 1], null)];
      expect(counts[0] + counts[1] + counts[2]).toBe(rows);
      expect(await check()).toEqual({ n: rows, unsealed: 0, left_out: 0 });
    });
    await inTransaction(async () => {
      await part(null, keys[0]);
      await client.query('SAVEPOINT s');
      await expect(part(keys[1], null)).rejects.toThrow('the parts of the legacy partition follow each other from the first key');
      await client.query('ROLLBACK TO SAVEPOINT s');
      await expect(part(keys[1], keys[0])).rejects.toThrow('bound no part of the legacy partition');
    });
    await inTransaction(async () => {
      await expect(
        client.query('SELECT audit_log_check_legacy_chunk($1::date, NULL, NULL, NULL, NULL)', [`${monthsAgo(BOUND + 1).month}-01`]),
      ).rejects.toThrow(`no legacy partition of audit_log ends at ${monthsAgo(BOUND + 1).month}-01`);
    });
    // Parts that stop before the last row, and a row written after the parts: the partition is read whole.
    await inTransaction(async () => {
      expect(await part(null, keys[0])).toBeLessThan(rows);
      expect(await check()).toEqual({ n: rows, unsealed: 0, left_out: 0 });
    });
    await inTransaction(async () => {
      await part(null, keys[keys.length - 1]);
      await part(keys[keys.length - 1], null);
      await client.query(
        `INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), $1::timestamptz, 'nda_created', 'success')`,
        [monthsAgo(6).start],
      );
      expect(await check()).toEqual({ n: rows + 1, unsealed: 1, left_out: 0 });
    });
    // Erasures held in several parts add up to what the whole partition holds: rows erased under two ids, and an erasure's entry.
    const erasures = async (inParts: boolean) => {
      let held = '';
      await inTransaction(async () => {
        await client.query('SET LOCAL session_replication_role = replica');
        await client.query(
          `UPDATE audit_log_legacy SET personal = '{"erased":"' || (CASE WHEN k % 2 = 0 THEN '11111111-1111-4111-8111-111111111111' ELSE '22222222-2222-4222-8222-222222222222' END) || '"}'
           FROM (SELECT l.id AS lid, row_number() OVER (ORDER BY COALESCE(l.tx, -1), l.id) AS k FROM audit_log_legacy AS l) AS o
           WHERE audit_log_legacy.id = o.lid AND o.k % 7919 = 1`,
        );
        await client.query(
          `UPDATE audit_log_legacy SET action = 'audit_erasure', changes = '{"erasure": {"id": "11111111-1111-4111-8111-111111111111", "rows": 4, "subject": "s"}}'
           WHERE id = $1`,
          [keys[keys.length - 1][1]],
        );
        await client.query('SET LOCAL session_replication_role = origin');
        if (inParts) {
          await part(null, keys[0]);
          await part(keys[0], keys[keys.length - 1]);
          await part(keys[keys.length - 1], null);
          // Added up, not read: within the bound a whole read exceeds.
          await client.query(`SET LOCAL statement_timeout = '${TIMEOUT_MS}ms'`);
        }
        held = (await client.query('SELECT erasures FROM audit_log_check_legacy($1::date)', [bound])).rows[0].erasures as string;
      });
      return JSON.parse(held) as { erased: Record<string, number>; entries: Record<string, unknown> };
    };
    const whole = await erasures(false);
    expect(Object.keys(whole.erased).sort()).toEqual(['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222']);
    expect(whole.entries).toEqual({ '11111111-1111-4111-8111-111111111111': { rows: 4, subject: 's' } });
    expect(await erasures(true)).toEqual(whole);
  }, 120_000);

  it('goes, each statement within the bound: its checkpoint counts and marks every row, and audit-verify is clean across it', async () => {
    const query = async (text: string, parameters?: unknown[]) => sql(text, parameters);
    const whole = await analyzeMonth(
      query,
      'public.audit_log',
      'public.audit_seal',
      await sealHeads(query, 'public.audit_seal'),
      '-infinity',
      monthsAgo(BOUND).start,
    );
    const [{ rows }] = await sql(`SELECT count(*)::int AS rows FROM audit_log_legacy`);
    expect(rows).toBeGreaterThanOrEqual(ROWS + UNNUMBERED);
    expect(whole).toEqual(expect.objectContaining({ rows, unsealed: 0, leftOut: 0 }));
    const decision = await retain({});
    expect(decision).toEqual(expect.objectContaining({ action: 'retired', rows }));
    expect(decision?.checkpoint?.manifest).toEqual(encodeRetained(whole.retained));
    expect(await attached()).toBe(false);
    const report = await verify(db.url(database), '--public-key', join(dir, 'seal.pub'));
    expect(report.out).toContain(
      `retention: 1 checkpoints, months legacy..${monthsAgo(BOUND + 1).month} removed (${rows as number} rows), each in the chain`,
    );
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
  }, 180_000);
});
