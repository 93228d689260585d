import { type INestApplication } from '@nestjs/common';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AuditSealer } from '../src/audit';
import { encodeRetained } from '../src/audit/lifecycle/checkpoint';
import { analyzeMonth, sealHeads } from '../src/audit/lifecycle/month-analysis';
import { applyRetention, type MonthDecision, type RetentionRun } from '../src/audit/lifecycle/retention';
import { clientQuery, fillRowsAgo, sealEverything } from './support/big-trail';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A month too big to be checked in one statement within retention's statement timeout (the 1M-row
// month that failed at 30 s, made small here: a 300 ms bound, seals of 500 rows, and a month of
// 60 000 rows, which one statement checks in well over a second). It must still go, each statement of its check within
// the bound, with every guarantee kept: a row changed or copied anywhere in such a month keeps it.
describe('retention of a month too big for one statement', () => {
  const database = 'big_month';
  const keys = sealingKeys();
  const ROWS = 60_000;
  const TIMEOUT_MS = 300;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  let client: Client;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const exists = async (k: number) => (await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(k)]))[0].kept as boolean;

  const retain = async (more: Partial<RetentionRun>): Promise<MonthDecision[]> =>
    applyRetention(
      { query: clientQuery(client) },
      {
        table: 'public.audit_log',
        months: 1,
        legalHold: [],
        dryRun: false,
        signingKey: createPrivateKey(keys.privatePem),
        timeoutMs: TIMEOUT_MS,
        ...more,
      },
    );
  const decisionOf = (decisions: MonthDecision[], k: number) => decisions.find((d) => d.month === monthsAgo(k).month);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-big-month-'));
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), {
      integrity: { enabled: true, intervalMs: 600_000, maxRowsPerSeal: 500, signingKey: keys.privatePem },
    });
    await fillRowsAgo(db, database, 4, ROWS);
    await fillRowsAgo(db, database, 3, 5_000);
    await fillRowsAgo(db, database, 2, 5_000);
    await sealEverything(() => app.get(AuditSealer).sealNow(), db, database);
    // The seals as if made with the triggers off (AuditSealMonths1766800000000 recorded none of their
    // months): the months are then read, in parts, as here, rather than checked from the records.
    await sql('DELETE FROM audit_seal_recorded');
    await sql('VACUUM ANALYZE audit_log');
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

  it('says in a dry run that the month would go, with all its rows', async () => {
    const decisions = await retain({ dryRun: true });
    expect(decisionOf(decisions, 4)).toEqual(expect.objectContaining({ action: 'would retire', rows: ROWS }));
    expect(await exists(4)).toBe(true);
  }, 120_000);

  it('removes the month, with a checkpoint audit-verify accepts that marks the rows one statement finds', async () => {
    const query = async (text: string, parameters?: unknown[]) => sql(text, parameters);
    const whole = await analyzeMonth(
      query,
      'public.audit_log',
      'public.audit_seal',
      await sealHeads(query, 'public.audit_seal'),
      monthsAgo(4).start,
      monthsAgo(4).end,
    );
    const decisions = await retain({ legalHold: [monthsAgo(3).month, monthsAgo(2).month] });
    expect(decisionOf(decisions, 4)).toEqual(expect.objectContaining({ action: 'retired', rows: ROWS }));
    expect(decisionOf(decisions, 4)?.checkpoint?.manifest).toEqual(encodeRetained(whole.retained));
    expect(await exists(4)).toBe(false);
    const report = await verify(db.url(database), '--public-key', join(dir, 'seal.pub'));
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
  }, 120_000);

  it('keeps a month whose sealed row, far into it, was changed; and one with a sealed row copied far from the original', async () => {
    const [{ id: changed }] = await sql(`SELECT id::text AS id FROM ${partitionAgo(3)} ORDER BY occurred_at DESC LIMIT 1`);
    await sql(
      `BEGIN; SET LOCAL session_replication_role = replica; UPDATE audit_log SET action = 'nda_deleted' WHERE id = '${changed as string}'; COMMIT`,
    );
    // The month's first sealed row copied by hand (its id and tx, so inside its seal's range) to the month's end.
    await sql(
      `BEGIN; SET LOCAL session_replication_role = replica;
       INSERT INTO audit_log (id, tx, occurred_at, action, outcome, recorded_at)
         SELECT id, tx, '${monthsAgo(2).start}'::timestamptz + interval '25 days', action, outcome, recorded_at FROM ${partitionAgo(2)}
         ORDER BY occurred_at LIMIT 1;
       COMMIT`,
    );
    for (const dryRun of [true, false]) {
      const decisions = await retain({ dryRun });
      expect(decisionOf(decisions, 3)).toEqual(
        expect.objectContaining({
          action: 'kept',
          reason: 'not wholly sealed: 1 rows in sealed ranges that no seal sealed (forged or invalid: see audit-verify)',
        }),
      );
      expect(decisionOf(decisions, 2)).toEqual(
        expect.objectContaining({
          action: 'kept',
          reason: 'not wholly sealed: 1 rows in sealed ranges that no seal sealed (forged or invalid: see audit-verify)',
        }),
      );
    }
    expect(await exists(3)).toBe(true);
    expect(await exists(2)).toBe(true);
  }, 120_000);
});
