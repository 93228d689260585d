import { type INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { AuditPartitions, AuditService } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { createAuditDatabase } from './support/audit-database';
import { monthPartition, monthStart, startPartitionsApp } from './support/partitions';
import { insertRowsAgo, migrateWithPastBound, partitionAgo } from './support/past-months';
import { TestPostgres } from './support/postgres';

// docs/LIFECYCLE.md "Partitions created ahead": the partition upkeep never makes an audit insert
// wait. A reader holds audit_log (an export, a running audit-verify) while
// audit_log_create_partitions() needs the default partition's lock to attach a month:
// PostgreSQL queues every later lock request behind a waiting one, so an upkeep that waited made
// inserts of rows without a month partition wait with it. It gives up at once (SQLSTATE 55P03),
// the module tries again a few times, then reports the months it could not create.
const WRITER = { user: 'upkeep_writer', password: 'writer-pw' };

describe('partition upkeep while a reader holds the table', () => {
  const normalizer = new AuditEntryNormalizer([], 64 * 1024);
  let db: TestPostgres;
  let url: string;

  beforeAll(async () => {
    db = await TestPostgres.start();
    url = await createAuditDatabase(db, 'audit', WRITER);
    await db.query('SELECT * FROM audit_log_create_partitions(3)', [], 'audit');
  }, 90_000);

  afterAll(async () => {
    await db?.stop();
  });

  /** A session that has read `audit_log` in a transaction it keeps open: it holds every partition, the default one too. */
  async function openReader(): Promise<Client> {
    const reader = new Client({ connectionString: db.url('audit') });
    await reader.connect();
    await reader.query('BEGIN');
    await reader.query('SELECT count(*) FROM audit_log');
    return reader;
  }

  const lockWait = async (pid: number) =>
    (await db.query<{ w: boolean }>(`SELECT wait_event_type = 'Lock' AS w FROM pg_stat_activity WHERE pid = $1`, [pid], 'audit'))[0]?.w ===
    true;

  /**
   * Calls the upkeep while a reader holds the table; once the call waits for a lock or is over,
   * inserts `record`. Whether the insert waited for a lock, its error, and the upkeep's SQLSTATE.
   */
  async function insertBesideUpkeep(record: AuditRecord, monthsAhead: number) {
    const reader = await openReader();
    const upkeep = new Client({ connectionString: url });
    const inserter = new Client({ connectionString: url });
    await Promise.all([upkeep.connect(), inserter.connect()]);
    try {
      const upkeepPid = (await upkeep.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const insertPid = (await inserter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      let over = false;
      const upkeeping = upkeep.query('SELECT * FROM audit_log_create_partitions($1)', [monthsAhead]).then(
        () => ((over = true), 'done'),
        (error: { code?: string }) => ((over = true), error.code),
      );
      while (!over && !(await lockWait(upkeepPid))) await new Promise((resolve) => setTimeout(resolve, 20));
      const { sql, parameters } = buildAuditInsert('audit_log', [record]);
      let done = false;
      const inserting = inserter.query(sql, parameters).then(
        () => ((done = true), null),
        (error: Error) => ((done = true), error.message),
      );
      let waited = false;
      while (!done && !waited) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        waited = await lockWait(insertPid);
      }
      await reader.query('COMMIT');
      const [error, upkeepOutcome] = await Promise.all([inserting, upkeeping]);
      return { waited, error, upkeep: upkeepOutcome };
    } finally {
      await Promise.all([reader.end(), upkeep.end(), inserter.end()]);
    }
  }

  const partitionOf = async (id: string) =>
    (await db.query<{ part: string }>(`SELECT tableoid::regclass::text AS part FROM audit_log WHERE id = $1`, [id], 'audit'))[0]?.part;

  it('an insert into a monthly partition does not queue behind it', async () => {
    const inTwoMonths = new Date(monthStart(2).getTime() + 14 * 86_400_000);
    const record = normalizer.normalize({ action: 'a', entityType: 'E', entityId: 'now', occurredAt: inTwoMonths }).record;
    expect(await insertBesideUpkeep(record, 6)).toEqual({ waited: false, error: null, upkeep: '55P03' });
    expect(await partitionOf(record.id)).toBe(monthPartition(inTwoMonths));
  }, 60_000);

  // A row of a month without a partition (dated past the months ahead here; or a month the
  // application was stopped through, written by the recovery at start) goes to the default partition.
  it('an insert into the default partition does not queue behind it, and is kept there', async () => {
    const outside = new Date(Date.UTC(new Date().getUTCFullYear() + 3, 0, 15));
    const record = normalizer.normalize({ action: 'a', entityType: 'E', entityId: 'late', occurredAt: outside }).record;
    expect(await insertBesideUpkeep(record, 9)).toEqual({ waited: false, error: null, upkeep: '55P03' });
    expect(await partitionOf(record.id)).toBe('audit_log_default');
  }, 60_000);

  it('gives up at once for another caller under way, which creates the months', async () => {
    const other = await db.connect('audit');
    const caller = new Client({ connectionString: url });
    await caller.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT * FROM audit_log_create_partitions(4)');
      const callerPid = (await caller.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      let over = false;
      const calling = caller.query('SELECT * FROM audit_log_create_partitions(4)').then(
        () => ((over = true), 'done'),
        (error: { code?: string }) => ((over = true), error.code),
      );
      let waited = false;
      while (!over && !waited) waited = await lockWait(callerPid);
      const outcome = await calling;
      expect({ waited, outcome }).toEqual({ waited: false, outcome: '55P03' });
      await other.query('COMMIT');
      const { rows } = await caller.query<{ created: number; covered_until: Date }>(
        'SELECT created, covered_until FROM audit_log_create_partitions(4)',
      );
      expect(rows).toEqual([{ created: 0, covered_until: monthStart(5) }]);
    } finally {
      await other.end();
      await caller.end();
    }
  }, 60_000);

  describe('the module', () => {
    let app: INestApplication | undefined;

    afterEach(async () => {
      await app?.close();
      app = undefined;
    });

    it('tries again while the lock is busy, reports the months it could not create, then creates them once it is free', async () => {
      const writerUrl = await createAuditDatabase(db, 'module', { user: 'upkeep_module', password: 'module-pw' });
      const reader = new Client({ connectionString: db.url('module') });
      await reader.connect();
      try {
        await reader.query('BEGIN');
        await reader.query('SELECT count(*) FROM audit_log');
        app = await startPartitionsApp(writerUrl, { writeTimeoutMs: 2000 });
        const partitions = app.get(AuditPartitions);
        // Entries are written all the same, into the default partition, while the upkeep tries again.
        const maintaining = partitions.maintainNow();
        const when = new Date(monthStart(2).getTime() + 86_400_000);
        await app.get(AuditService).log({ action: 'nda_created', entityId: 'meanwhile', occurredAt: when });
        const [row] = await db.query<{ part: string; id: string }>(
          `SELECT id, tableoid::regclass::text AS part FROM audit_log WHERE entity_id = 'meanwhile'`,
          [],
          'module',
        );
        expect(row?.part).toBe('audit_log_default');
        await maintaining;
        const months = [1, 2, 3].map((m) => monthStart(m).toISOString().slice(0, 7));
        expect(partitions.status()).toMatchObject({
          partitioned: true,
          created: 0,
          lastError: expect.stringMatching(/^55P03: /) as unknown,
        });
        expect(partitions.status()?.lastError).toContain(`not created: ${months.join(', ')}`);

        await reader.query('COMMIT');
        await partitions.maintainNow();
        expect(partitions.status()).toMatchObject({ created: 3, moved: 1, lastError: null, coveredUntil: monthStart(4).toISOString() });
        expect(
          (await db.query<{ part: string }>(`SELECT tableoid::regclass::text AS part FROM audit_log WHERE id = $1`, [row.id], 'module'))[0],
        ).toEqual({ part: monthPartition(when) });
      } finally {
        await reader.end();
      }
    }, 90_000);

    it('names the past months when only they are left to create', async () => {
      await db.createDatabase('past');
      await migrateWithPastBound(db, 'past', 2);
      await db.query('SELECT * FROM audit_log_create_partitions(3)', [], 'past');
      await insertRowsAgo(db, 'past', 1, 2);
      const reader = new Client({ connectionString: db.url('past') });
      await reader.connect();
      try {
        await reader.query('BEGIN');
        await reader.query('SELECT count(*) FROM audit_log');
        app = await startPartitionsApp(db.url('past'), { writeTimeoutMs: 2000 }, []);
        const partitions = app.get(AuditPartitions);
        await partitions.maintainNow();
        expect(partitions.status()?.lastError).toMatch(
          /^55P03: partitions not created: past months whose rows wait in the default partition;/,
        );
        await reader.query('COMMIT');
        await partitions.maintainNow();
        expect(partitions.status()).toMatchObject({ created: 1, moved: 2, lastError: null });
        expect(await db.query(`SELECT DISTINCT tableoid::regclass::text AS part FROM audit_log`, [], 'past')).toEqual([
          { part: partitionAgo(1) },
        ]);
      } finally {
        await reader.end();
      }
    }, 90_000);
  });
});
