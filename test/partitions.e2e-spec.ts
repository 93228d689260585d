import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditPartitions1765000000000 } from '../src/audit';
import { sealOnce } from '../src/audit/integrity/seal-store';
import { verify } from './support/integrity';
import { TestPostgres } from './support/postgres';

// audit_log range-partitioned by month of occurred_at (issue 21): on a new install (an empty
// table) and on a legacy table already holding sealed rows, converted without a rewrite; then rows
// dated outside the months created, caught by the default partition and moved, tx and all, when
// their month's partition is created. The verifier must find every seal intact throughout.
const BEFORE_PARTITIONS = AUDIT_MIGRATIONS.slice(0, AUDIT_MIGRATIONS.indexOf(AuditPartitions1765000000000));

/** The first instant of the month `months` after this one, UTC, as ISO 8601. */
function monthStart(months: number): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + months, 1)).toISOString();
}

describe('audit_log partitioned by month', () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  const migrate = async (database: string, migrations: readonly unknown[]) => {
    const source = new DataSource({ type: 'postgres', url: db.url(database), migrations: [...(migrations as never[])] });
    await source.initialize();
    try {
      await source.runMigrations();
    } finally {
      await source.destroy();
    }
  };
  const seal = async (database: string) => {
    const source = new DataSource({ type: 'postgres', url: db.url(database) });
    await source.initialize();
    const runner = source.createQueryRunner();
    try {
      for (;;) {
        const made = await sealOnce(runner, 'audit_log', { maxRows: 1000, signingKey: null });
        if (made === null) return;
      }
    } finally {
      await runner.release();
      await source.destroy();
    }
  };
  const partitions = (database: string) =>
    db.query(
      `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
       WHERE h.inhparent = 'audit_log'::regclass ORDER BY c.relname`,
      [],
      database,
    );
  const create = (database: string, months = 3) =>
    db.query('SELECT created, moved::int, default_rows::int, covered_until FROM audit_log_create_partitions($1)', [months], database);
  const insert = (database: string, id: string, occurredAt: string) =>
    db.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES ($1, $2, 'nda_created', 'success') ON CONFLICT DO NOTHING`,
      [id, occurredAt],
      database,
    );

  describe('a new install (an empty table)', () => {
    beforeAll(async () => {
      await db.createDatabase('fresh');
      await migrate('fresh', AUDIT_MIGRATIONS);
    });

    it('makes audit_log a table partitioned by occurred_at, with a legacy partition up to next month and a default partition', async () => {
      const [{ kind, key }] = await db.query(
        `SELECT relkind::text AS kind, pg_get_partkeydef('audit_log'::regclass) AS key FROM pg_class WHERE oid = 'audit_log'::regclass`,
        [],
        'fresh',
      );
      expect({ kind, key }).toEqual({ kind: 'p', key: 'RANGE (occurred_at)' });
      const bound = monthStart(1).slice(0, 10);
      expect(await partitions('fresh')).toEqual([
        { name: 'audit_log_default', bound: 'DEFAULT' },
        {
          name: 'audit_log_legacy',
          bound: expect.stringMatching(new RegExp(`^FOR VALUES FROM \\(MINVALUE\\) TO \\('${bound} 00:00:00\\+00'\\)$`)),
        },
      ]);
      const [{ key: primary }] = await db.query(
        `SELECT pg_get_constraintdef(oid) AS key FROM pg_constraint WHERE conrelid = 'audit_log'::regclass AND contype = 'p'`,
        [],
        'fresh',
      );
      expect(primary).toBe('PRIMARY KEY (id, occurred_at)');
    });

    it('creates this month and the next three months ahead, once', async () => {
      const [first] = await create('fresh');
      expect(first).toEqual({ created: 3, moved: 0, default_rows: 0, covered_until: new Date(monthStart(4)) });
      const [again] = await create('fresh');
      expect(again).toEqual({ created: 0, moved: 0, default_rows: 0, covered_until: new Date(monthStart(4)) });
      const names = (await partitions('fresh')).map((p) => p.name as string);
      expect(names).toEqual(expect.arrayContaining([1, 2, 3].map((m) => `audit_log_p${monthStart(m).slice(0, 7).replace('-', '_')}`)));
    });

    it('keeps every partition append-only and sets tx on it; an exact retry is absorbed', async () => {
      const id = '01900000-0000-7000-8000-000000000001';
      const at = new Date(Date.parse(monthStart(2)) + 3_600_000).toISOString();
      await insert('fresh', id, at);
      await insert('fresh', id, at);
      const rows = await db.query(
        `SELECT tableoid::regclass::text AS part, tx IS NOT NULL AS has_tx FROM audit_log WHERE id = $1`,
        [id],
        'fresh',
      );
      expect(rows).toEqual([{ part: `audit_log_p${monthStart(2).slice(0, 7).replace('-', '_')}`, has_tx: true }]);
      const part = rows[0].part as string;
      for (const sql of [
        `UPDATE ${part} SET action = 'x'`,
        `DELETE FROM ${part}`,
        `TRUNCATE ${part}`,
        `TRUNCATE audit_log`,
        `DELETE FROM audit_log`,
      ]) {
        await expect(db.query(sql, [], 'fresh')).rejects.toThrow(/append-only/);
      }
    });
  });

  describe('rows dated outside the months created', () => {
    const far = monthStart(6);
    const farId = '01900000-0000-7000-8000-0000000000f1';

    beforeAll(async () => {
      await db.createDatabase('outside');
      await migrate('outside', AUDIT_MIGRATIONS);
      await create('outside');
    });

    it('are taken by the default partition, never refused, and counted', async () => {
      await insert('outside', farId, new Date(Date.parse(far) + 60_000).toISOString());
      const [{ part }] = await db.query(`SELECT tableoid::regclass::text AS part FROM audit_log WHERE id = $1`, [farId], 'outside');
      expect(part).toBe('audit_log_default');
      const [status] = await create('outside');
      expect(status).toMatchObject({ created: 0, moved: 0, default_rows: 1 });
    });

    it("are moved into their month's partition when it is created, keeping tx, and their seal still verifies", async () => {
      const [{ tx: before }] = await db.query(`SELECT tx::text AS tx FROM audit_log WHERE id = $1`, [farId], 'outside');
      await seal('outside');
      const [status] = await create('outside', 6);
      expect(status).toMatchObject({ created: 3, moved: 1, default_rows: 0 });
      const [{ part, tx }] = await db.query(
        `SELECT tableoid::regclass::text AS part, tx::text AS tx FROM audit_log WHERE id = $1`,
        [farId],
        'outside',
      );
      expect({ part, tx }).toEqual({ part: `audit_log_p${far.slice(0, 7).replace('-', '_')}`, tx: before });
      const report = await verify(db.url('outside'));
      expect(report.anomalies).toEqual([]);
      expect(report.code).toBe(0);
    });
  });

  it("seals a row that repeats a sealed row's id with another occurred_at (only a forger writes one) as a row of its own", async () => {
    await db.createDatabase('repeat');
    await migrate('repeat', AUDIT_MIGRATIONS);
    await insert('repeat', '01900000-0000-7000-8000-0000000000d1', new Date().toISOString());
    await seal('repeat');
    // The key is (id, occurred_at): the database takes it. The sealer must not read the sealed row again with it.
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome) SELECT id, occurred_at - interval '1 second', 'forged', 'success' FROM audit_log`,
      [],
      'repeat',
    );
    await seal('repeat');
    const seals = await db.query(`SELECT seq::int, row_count FROM audit_seal ORDER BY seq`, [], 'repeat');
    expect(seals).toEqual([
      { seq: 1, row_count: 1 },
      { seq: 2, row_count: 1 },
    ]);
    const report = await verify(db.url('repeat'));
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
  });

  describe('an existing install (a filled, sealed legacy table)', () => {
    const future = '01900000-0000-7000-8000-0000000000e1';
    const infinite = '01900000-0000-7000-8000-0000000000e2';

    beforeAll(async () => {
      await db.createDatabase('filled');
      await migrate('filled', BEFORE_PARTITIONS.slice(0, 3));
      // A row of no month, stored before the range constraint existed.
      await insert('filled', infinite, 'infinity');
      await migrate('filled', BEFORE_PARTITIONS);
      await db.query(
        `INSERT INTO audit_log (id, occurred_at, action, outcome, entity_id)
         SELECT gen_random_uuid(), now() - g * interval '1 hour', 'nda_created', 'success', 'e' || g FROM generate_series(1, 3000) AS g`,
        [],
        'filled',
      );
      await insert('filled', future, '2031-05-05T05:05:05Z');
      await seal('filled');
      await db.query(`CREATE ROLE filled_writer LOGIN`, [], 'filled');
      await db.query(`GRANT INSERT, SELECT ON audit_log TO filled_writer`, [], 'filled');
    }, 60_000);

    it('converts it in place: the rows stay in the legacy partition, those of later months go to the default one', async () => {
      const [{ file: fileBefore }] = await db.query(`SELECT pg_relation_filenode('audit_log')::text AS file`, [], 'filled');
      await migrate('filled', AUDIT_MIGRATIONS);
      const [{ file: fileAfter }] = await db.query(`SELECT pg_relation_filenode('audit_log_legacy')::text AS file`, [], 'filled');
      expect(fileAfter).toBe(fileBefore);
      const counts = await db.query(
        `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM audit_log GROUP BY 1 ORDER BY 1`,
        [],
        'filled',
      );
      expect(counts).toEqual([
        { part: 'audit_log_default', n: 2 },
        { part: 'audit_log_legacy', n: 3000 },
      ]);
    });

    it('verifies clean after the conversion: every seal, every row where it was', async () => {
      const report = await verify(db.url('filled'));
      // The row of no month was never sealable (audit-verify named it before, too); nothing else.
      expect(report.anomalies).toEqual([`ANOMALY row_invalid row ${infinite}`]);
    });

    it('keeps the range constraints as they were (NOT VALID while such a row remains) and the app role its grants', async () => {
      const constraints = await db.query(
        `SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'audit_log'::regclass AND contype = 'c' ORDER BY conname`,
        [],
        'filled',
      );
      expect(constraints).toEqual([
        { conname: 'audit_log_occurred_at_range', convalidated: false },
        { conname: 'audit_log_outcome_check', convalidated: true },
        { conname: 'audit_log_recorded_at_range', convalidated: true },
      ]);
      const [grants] = await db.query(
        `SELECT has_table_privilege('filled_writer', 'audit_log', 'INSERT') AS insert, has_table_privilege('filled_writer', 'audit_log', 'SELECT') AS select,
                has_table_privilege('filled_writer', 'audit_log', 'UPDATE') AS update`,
        [],
        'filled',
      );
      expect(grants).toEqual({ insert: true, select: true, update: false });
    });

    it('goes on: new rows are written, absorbed on retry, sealed and verified with the old ones', async () => {
      await create('filled');
      const id = '01900000-0000-7000-8000-0000000000e3';
      const at = new Date().toISOString();
      await insert('filled', id, at);
      await insert('filled', id, at);
      await seal('filled');
      const [{ n }] = await db.query(`SELECT count(*)::int AS n FROM audit_log WHERE id = $1`, [id], 'filled');
      expect(n).toBe(1);
      const report = await verify(db.url('filled'));
      expect(report.anomalies).toEqual([`ANOMALY row_invalid row ${infinite}`]);
    });
  });

  it('uses the unique index and the bound made beforehand, and refuses a bound that is not a month start', async () => {
    await db.createDatabase('prepared');
    await migrate('prepared', BEFORE_PARTITIONS);
    await insert('prepared', '01900000-0000-7000-8000-0000000000c1', new Date().toISOString());
    await db.query(`CREATE UNIQUE INDEX CONCURRENTLY audit_log_id_occurred_at_key ON audit_log (id, occurred_at)`, [], 'prepared');
    const [{ oid }] = await db.query(`SELECT 'audit_log_id_occurred_at_key'::regclass::oid::int AS oid`, [], 'prepared');
    await db.query(
      `ALTER TABLE audit_log ADD CONSTRAINT audit_log_legacy_bound CHECK (occurred_at < '${monthStart(2)}') NOT VALID`,
      [],
      'prepared',
    );
    await db.query(`ALTER TABLE audit_log VALIDATE CONSTRAINT audit_log_legacy_bound`, [], 'prepared');
    await migrate('prepared', AUDIT_MIGRATIONS);
    const [{ key }] = await db.query(
      `SELECT conindid::int AS key FROM pg_constraint WHERE conrelid = 'audit_log_legacy'::regclass AND contype = 'p'`,
      [],
      'prepared',
    );
    expect(key).toBe(oid);
    const legacy = (await partitions('prepared')).find((p) => p.name === 'audit_log_legacy');
    expect(legacy?.bound).toBe(`FOR VALUES FROM (MINVALUE) TO ('${monthStart(2).slice(0, 10)} 00:00:00+00')`);
    expect(await create('prepared')).toMatchObject([{ created: 2, covered_until: new Date(monthStart(4)) }]);

    await db.createDatabase('midmonth');
    await migrate('midmonth', BEFORE_PARTITIONS);
    const midMonth = new Date(Date.parse(monthStart(2)) + 86_400_000).toISOString();
    await db.query(`ALTER TABLE audit_log ADD CONSTRAINT audit_log_legacy_bound CHECK (occurred_at < '${midMonth}')`, [], 'midmonth');
    await expect(migrate('midmonth', AUDIT_MIGRATIONS)).rejects.toThrow(/first instant of a month/);
    const [{ kind }] = await db.query(`SELECT relkind::text AS kind FROM pg_class WHERE oid = 'audit_log'::regclass`, [], 'midmonth');
    expect(kind).toBe('r');
  });

  it('lets a role that may only INSERT and SELECT create partitions through the function once granted, and nothing else', async () => {
    await db.createDatabase('grants');
    await migrate('grants', AUDIT_MIGRATIONS);
    await db.query(`CREATE ROLE lp_writer LOGIN PASSWORD 'lp'`, [], 'grants');
    await db.query(`GRANT INSERT, SELECT ON audit_log TO lp_writer`, [], 'grants');
    const client = new Client({ connectionString: db.url('grants', 'lp_writer', 'lp') });
    await client.connect();
    try {
      await expect(client.query('SELECT * FROM audit_log_create_partitions(3)')).rejects.toThrow(/permission denied/);
      await db.query(`GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) TO lp_writer`, [], 'grants');
      const { rows } = await client.query<{ created: number }>('SELECT created FROM audit_log_create_partitions(3)');
      expect(rows).toEqual([{ created: 3 }]);
      await expect(client.query('SELECT * FROM audit_log_create_partitions(25)')).rejects.toThrow(/0 to 24/);
      await expect(client.query('CREATE TABLE audit_log_x (LIKE audit_log)')).rejects.toThrow(/permission denied/);
      await expect(client.query('SELECT count(*) FROM audit_log_default')).rejects.toThrow(/permission denied/);
    } finally {
      await client.end();
    }
  });
});
