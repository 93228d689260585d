import { type INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AuditRetireInChunks1766300000000, AuditSealer } from '../src/audit';
import { sealHeads } from '../src/audit/lifecycle/month-analysis';
import { startSealingApp } from './support/integrity';
import { insertRowsAgo, monthsAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// audit_log_check_month adds up the parts audit_log_check_month_chunk checked only when they hold
// every row of the month once, as it is: code calling the functions directly (the sealer's role may
// run modified code) cannot leave rows out of the check by choosing the parts, nor by writing a
// row after them.
describe('a month checked in parts by the database', () => {
  const database = 'month_parts';
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let client: Client;
  let keys: [string, string][];
  const month = `${monthsAgo(2).month}-01`;
  const part = (after: [string, string] | null, upto: [string, string] | null) =>
    client.query('SELECT audit_log_check_month_chunk($1::date, $2::bigint, $3::uuid, $4::bigint, $5::uuid) AS n', [
      month,
      ...(after ?? [null, null]),
      ...(upto ?? [null, null]),
    ]);
  const check = async () =>
    (await client.query('SELECT n, unsealed, left_out FROM audit_log_check_month($1::date)', [month])).rows[0] as Record<string, string>;
  const inTransaction = async (work: () => Promise<void>) => {
    await client.query('BEGIN');
    try {
      await work();
    } finally {
      await client.query('ROLLBACK');
    }
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 3);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000 } });
    // Three seals of two rows each.
    for (let i = 0; i < 3; i++) {
      await insertRowsAgo(db, database, 2, 2);
      await app.get(AuditSealer).sealNow();
    }
    client = new Client({ connectionString: db.url(database) });
    await client.connect();
    const query = async (text: string, parameters?: unknown[]) => (await client.query(text, parameters)).rows as Record<string, unknown>[];
    keys = (await sealHeads(query, 'public.audit_seal')).map((h) => [String(h.last.tx ?? -1n), h.last.id]);
    expect(keys).toHaveLength(3);
  }, 120_000);

  afterAll(async () => {
    await client?.end();
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('adds up parts that tile the sealing order', () =>
    inTransaction(async () => {
      const counts = [];
      for (const [after, upto] of [
        [null, keys[0]],
        [keys[0], keys[2]],
        [keys[2], null],
      ] as const) {
        counts.push(Number((await part(after, upto)).rows[0].n));
      }
      expect(counts).toEqual([2, 4, 0]);
      expect(await check()).toEqual({ n: '6', unsealed: '0', left_out: '0' });
    }));

  it('refuses a part that does not begin where the one before ended, or ends before it begins', () =>
    inTransaction(async () => {
      await part(null, keys[0]);
      await client.query('SAVEPOINT s');
      await expect(part(keys[1], null)).rejects.toThrow(`the parts of month ${monthsAgo(2).month} follow each other from the first key`);
      await client.query('ROLLBACK TO SAVEPOINT s');
      await expect(part(keys[1], keys[0])).rejects.toThrow('bound no part of a month');
    }));

  it('reads the month whole when the parts stop before its last row', () =>
    inTransaction(async () => {
      await part(null, keys[0]);
      await part(keys[0], keys[1]);
      expect(await check()).toEqual({ n: '6', unsealed: '0', left_out: '0' });
    }));

  it('reads the month whole when the transaction wrote a row into it after the parts', () =>
    inTransaction(async () => {
      await part(null, keys[1]);
      await part(keys[1], null);
      await client.query(
        `INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), $1::timestamptz + interval '9 hours', 'nda_created', 'success')`,
        [monthsAgo(2).start],
      );
      expect(await check()).toEqual({ n: '7', unsealed: '1', left_out: '0' });
    }));

  it('is made again by its migration run a second time, as it was', async () => {
    const source = new DataSource({ type: 'postgres', url: db.url(database) });
    await source.initialize();
    const runner = source.createQueryRunner();
    try {
      await new AuditRetireInChunks1766300000000().up(runner);
    } finally {
      await runner.release();
      await source.destroy();
    }
    await inTransaction(async () => {
      await part(null, keys[1]);
      await part(keys[1], null);
      expect(await check()).toEqual({ n: '6', unsealed: '0', left_out: '0' });
    });
  });
});
