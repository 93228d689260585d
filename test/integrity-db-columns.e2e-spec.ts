import { type INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { CreateAuditLog1732700000000 } from '../migrations/1732700000000-CreateAuditLog';
import { AuditIntegrity1764300000000 } from '../migrations/1764300000000-AuditIntegrity';
import { AuditReadIndexes1764300000001 } from '../migrations/1764300000001-AuditReadIndexes';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The columns only the database may set (tx, and timestamps a seal can encode), on a table that
// already holds rows written before they were constrained: an infinite occurred_at, a -infinity
// recorded_at, a year past 9999, a year the seal encoding cannot hold, and a tx from the future.
// The migration must not stop the app; the sealer seals around them and goes on; audit-verify
// names each of them; and no inserter can write such a row again.
const BAD = {
  infinite: '01900000-0000-7000-8000-0000000000a1',
  minusInfinite: '01900000-0000-7000-8000-0000000000a2',
  year10000: '01900000-0000-7000-8000-0000000000a3',
  year294000: '01900000-0000-7000-8000-0000000000a4',
  futureTx: '01900000-0000-7000-8000-0000000000a5',
  specialTx: '01900000-0000-7000-8000-0000000000a6',
};

describe('columns only the database sets, and rows stored before they were constrained', () => {
  let db: TestPostgres;
  let stderr: StderrCapture;
  let app: INestApplication;
  let writerUrl: string;
  const sql = (text: string, params: unknown[] = []) => db.query(text, params, 'legacy');

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('legacy');
    // The table as the shipped migrations left it, with bad rows stored before this release.
    const before = new DataSource({
      type: 'postgres',
      url: db.url('legacy'),
      migrations: [CreateAuditLog1732700000000, AuditIntegrity1764300000000, AuditReadIndexes1764300000001],
    });
    await before.initialize();
    try {
      await before.runMigrations();
    } finally {
      await before.destroy();
    }
    const insert = (id: string, occurredAt: string, extra = '', extraValue = '') =>
      sql(
        `INSERT INTO audit_log (id, occurred_at, action, outcome${extra}) VALUES ('${id}', '${occurredAt}', 'nda_created', 'success'${extraValue})`,
      );
    await insert(BAD.infinite, 'infinity');
    await insert(BAD.minusInfinite, '2026-01-01T00:00:00Z', ', recorded_at', ", '-infinity'");
    await insert(BAD.year10000, '10000-06-01T00:00:00Z');
    await insert(BAD.year294000, '294000-01-01T00:00:00Z');
    await insert(BAD.futureTx, '2026-01-01T00:00:00Z', ', tx', ', pg_current_xact_id()::text::bigint + 1000000000');
    // 2 is PostgreSQL's frozen transaction id: no row was ever inserted by it.
    await insert(BAD.specialTx, '2026-01-01T00:00:00Z', ', tx', ', 2');
    await sql(`CREATE ROLE writer LOGIN PASSWORD 'writer'`);
    await sql(`GRANT INSERT, SELECT ON audit_log TO writer`);
    writerUrl = db.url('legacy', 'writer', 'writer');
    stderr = new StderrCapture();
    app = await startSealingApp(db.url('legacy'), { integrity: { intervalMs: 3_600_000 } });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  const asWriter = async <T>(use: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: writerUrl });
    await client.connect();
    try {
      return await use(client);
    } finally {
      await client.end();
    }
  };
  const logMany = (prefix: string, n: number) =>
    Promise.all(Array.from({ length: n }, (_, i) => app.get(AuditService).log({ action: 'nda_created', entityId: `${prefix}-${i}` })));
  const unsealed = async () => {
    const [{ rows }] = await sql('SELECT count(*)::int AS rows FROM audit_log');
    const [{ sealed }] = await sql('SELECT coalesce(sum(row_count), 0)::int AS sealed FROM audit_seal');
    return Number(rows) - Number(sealed);
  };

  it('starts on a table holding such rows: both timestamps are constrained, left NOT VALID while bad rows remain', async () => {
    const constraints = await sql(
      `SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'audit_log'::regclass AND contype = 'c' AND conname LIKE '%_range' ORDER BY conname`,
    );
    expect(constraints).toEqual([
      { conname: 'audit_log_occurred_at_range', convalidated: false },
      { conname: 'audit_log_recorded_at_range', convalidated: false },
    ]);
  });

  it.each([
    ['occurred_at', 'infinity'],
    ['occurred_at', '-infinity'],
    ['occurred_at', '10000-01-01T00:00:00Z'],
    ['occurred_at', '0001-12-31T23:59:59Z BC'],
    ['recorded_at', 'infinity'],
  ])('refuses a new row whose %s is %s', async (column, value) => {
    const columns = column === 'occurred_at' ? 'occurred_at' : 'occurred_at, recorded_at';
    const values = column === 'occurred_at' ? `'${value}'` : `now(), '${value}'`;
    const error = await asWriter((client) =>
      client.query(`INSERT INTO audit_log (id, ${columns}, action, outcome) VALUES (gen_random_uuid(), ${values}, 'x', 'success')`).then(
        () => null,
        (e: { code?: string }) => e,
      ),
    );
    expect(error?.code).toBe('23514');
  });

  it("sets tx itself: an inserter's tx, from the future or none at all, becomes the inserting transaction's id", async () => {
    const { ids, xact } = await asWriter(async (client) => {
      await client.query('BEGIN');
      const inserted = await client.query<{ id: string }>(
        `INSERT INTO audit_log (id, occurred_at, action, outcome, tx) VALUES
           (gen_random_uuid(), now(), 'x', 'success', pg_current_xact_id()::text::bigint + 1000000000),
           (gen_random_uuid(), now(), 'x', 'success', NULL),
           (gen_random_uuid(), now(), 'x', 'success', 3)
         RETURNING id::text`,
      );
      const [{ id }] = (await client.query<{ id: string }>('SELECT pg_current_xact_id()::text AS id')).rows;
      await client.query('COMMIT');
      return { ids: inserted.rows.map((r) => r.id), xact: id };
    });
    const stored = await sql('SELECT tx::text AS tx FROM audit_log WHERE id = ANY($1::uuid[])', [ids]);
    expect(stored).toEqual([{ tx: xact }, { tx: xact }, { tx: xact }]);
  });

  it('seals every other row around the bad ones and goes on sealing later rows', async () => {
    await logMany('first', 20);
    await app.get(AuditSealer).sealNow();
    expect(stderr.of(AUDIT_EVENTS.sealFailed)).toEqual([]);
    expect(await unsealed()).toBe(6);
    await logMany('later', 10);
    await app.get(AuditSealer).sealNow();
    expect(stderr.of(AUDIT_EVENTS.sealFailed)).toEqual([]);
    expect(await unsealed()).toBe(6);
    expect(app.get(AuditSealer).status()).toMatchObject({ failures: 0 });
  });

  it('audit-verify names each bad row, and nothing else', async () => {
    await app.get(AuditSealer).sealNow();
    const result = await verify(db.url('legacy'));
    expect(result.anomalies.sort()).toEqual(
      [
        `ANOMALY row_invalid row ${BAD.infinite}`,
        `ANOMALY row_invalid row ${BAD.minusInfinite}`,
        `ANOMALY row_invalid row ${BAD.year10000}`,
        `ANOMALY row_invalid row ${BAD.year294000}`,
        `ANOMALY row_forged row ${BAD.futureTx}`,
        `ANOMALY row_invalid row ${BAD.specialTx}`,
      ].sort(),
    );
    expect(result.out.find((line) => line.includes(BAD.infinite))).toContain('occurred_at');
    expect(result.out.find((line) => line.includes(BAD.minusInfinite))).toContain('recorded_at');
    expect(result.out.find((line) => line.includes(BAD.futureTx))).toContain('from the future');
    expect(result.out.find((line) => line.includes(BAD.specialTx))).toContain('its tx (2) is no transaction');
    expect(result.code).toBe(1);
  });

  it('reports the first error that stopped it, not the aborted transaction that follows', async () => {
    // A policy that fails while the rows are read, for an auditor role (the owner is not subject to it).
    await sql(`CREATE ROLE auditor LOGIN PASSWORD 'auditor'`);
    await sql('GRANT SELECT ON audit_log, audit_seal TO auditor');
    await sql(`CREATE FUNCTION unreadable(id uuid) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN
        IF id = '${BAD.year10000}' THEN RAISE EXCEPTION 'row % is unreadable', id USING ERRCODE = 'data_corrupted'; END IF;
        RETURN true;
      END $$`);
    await sql('ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY');
    await sql('CREATE POLICY auditor_reads ON audit_log FOR SELECT TO auditor USING (unreadable(id))');
    try {
      for (const jobs of ['1', '3']) {
        const result = await verify(db.url('legacy', 'auditor', 'auditor'), '--jobs', jobs);
        expect(result.out[0]).toBe(`audit-verify failed: XX001: row ${BAD.year10000} is unreadable`);
        expect(result.code).toBe(2);
      }
    } finally {
      await sql('ALTER TABLE audit_log DISABLE ROW LEVEL SECURITY');
    }
  });
});
