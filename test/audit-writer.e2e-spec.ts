import { Client } from 'pg';
import { DataSource, type QueryRunner } from 'typeorm';
import { AUDIT_DEFAULTS, AuditLog } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { AuditWriter } from '../src/audit/audit.writer';
import { WRITE_TIMEOUT_CODE } from '../src/audit/db-error';
import { createAuditDatabase } from './support/audit-database';
import { TestPostgres } from './support/postgres';

// AuditWriter on its own against a real PostgreSQL, as the least-privilege role the module runs
// as, with a pool of one connection so that a test can take that connection away from it.
const WRITE_TIMEOUT_MS = 500;
// Far above the write timeout, far below jest's default: a write that is not bounded fails by name.
const TEST_TIMEOUT_MS = 10_000;
const WRITER = { user: 'audit_writer', password: 'writer-pw' };

describe('AuditWriter against a real PostgreSQL', () => {
  let db: TestPostgres;
  let dataSource: DataSource;
  let writer: AuditWriter;
  let holder: QueryRunner | undefined;

  const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, AUDIT_DEFAULTS.maxEntryBytes);
  const record = (entityId: string, action = 'nda_created'): AuditRecord =>
    normalizer.normalize({ action, entityType: 'NDA', entityId, userId: 'alice', changes: { entityId } }).record;
  const rows = (ids: string[]) =>
    db.query<{ id: string; action: string }>('SELECT id, action FROM audit_log WHERE id = ANY($1)', [ids], 'audit');

  beforeAll(async () => {
    db = await TestPostgres.start();
    const writerUrl = await createAuditDatabase(db, 'audit', WRITER);
    dataSource = new DataSource({ type: 'postgres', url: writerUrl, entities: [AuditLog], extra: { max: 1 } });
    await dataSource.initialize();
    writer = new AuditWriter(dataSource.getRepository(AuditLog), WRITE_TIMEOUT_MS);
  }, 60_000);

  afterEach(async () => {
    if (holder) {
      await holder.rollbackTransaction();
      await holder.release();
      holder = undefined;
      // The pool hands its connection out in order: once this runs, a write left waiting has settled.
      await dataSource.query('SELECT 1');
    }
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await db?.stop();
  }, 30_000);

  it(
    'inserts an id already present without error and without a second row or a change to the first',
    async () => {
      const first = record('nda-dup-1');
      const second = record('nda-dup-2');
      await writer.insert([first]);
      await expect(writer.insert([{ ...first, action: 'nda_forged' }, second])).resolves.toBeUndefined();
      await expect(writer.insert([first])).resolves.toBeUndefined();
      const found = await rows([first.id, second.id]);
      expect(found).toHaveLength(2);
      expect(Object.fromEntries(found.map((row) => [row.id, row.action]))).toEqual({
        [first.id]: 'nda_created',
        [second.id]: 'nda_created',
      });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'writes a retried batch through the real repository in one statement: ON CONFLICT, not an INSERT per row',
    async () => {
      const present = record('nda-retry-1');
      const fresh = record('nda-retry-2');
      await writer.insert([present]);
      // A retry after a timed-out write whose INSERT landed: the batch holds a row already there.
      const query = jest.spyOn(Client.prototype, 'query');
      try {
        await writer.insert([present, fresh]);
        expect(query).toHaveBeenCalledTimes(1);
      } finally {
        query.mockRestore();
      }
      expect((await rows([present.id, fresh.id])).map((row) => row.id).sort()).toEqual([present.id, fresh.id].sort());
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'buildAuditInsert skips the ids already present and, with returning, names only the rows it inserted',
    async () => {
      const present = record('nda-returning-1');
      const fresh = record('nda-returning-2');
      await writer.insert([present]);
      const { sql, parameters } = buildAuditInsert('"audit_log"', [present, fresh], { returning: true });
      const returned = (await dataSource.query(sql, parameters)) as { id: string }[];
      expect(returned).toEqual([{ id: fresh.id }]);
      expect((await rows([present.id, fresh.id])).map((row) => row.id).sort()).toEqual([present.id, fresh.id].sort());
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'writes a batch of 500 in one round trip, its timeouts confined to that statement',
    async () => {
      const batch = Array.from({ length: 500 }, (_, n) => record(`nda-round-trip-${n}`));
      const query = jest.spyOn(Client.prototype, 'query');
      try {
        await writer.insert(batch);
        expect(query).toHaveBeenCalledTimes(1);
      } finally {
        query.mockRestore();
      }
      expect(await rows(batch.map((r) => r.id))).toHaveLength(500);
      // The pool's one connection, as the next business query would find it.
      const settings = (await dataSource.query('SELECT current_setting($1) AS statement, current_setting($2) AS lock', [
        'statement_timeout',
        'lock_timeout',
      ])) as { statement: string; lock: string }[];
      expect(settings).toEqual([{ statement: '0', lock: '0' }]);
    },
    TEST_TIMEOUT_MS,
  );

  /** The audit role's backends still running a statement, or only those waiting for a lock. */
  const writerBackends = async (what: 'active' | 'waiting for a lock') =>
    (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND ${what === 'active' ? "state = 'active'" : "wait_event_type = 'Lock'"}`,
        [WRITER.user],
      )
    )[0].n;
  /** Polls until the audit role has no such backend; rejects, naming it, after ten write timeouts. */
  const noWriterBackend = async (what: 'active' | 'waiting for a lock') => {
    const deadline = Date.now() + WRITE_TIMEOUT_MS * 10;
    while ((await writerBackends(what)) > 0) {
      if (Date.now() > deadline) throw new Error(`a backend of ${WRITER.user} is still ${what}, ten write timeouts after the write`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const timedOut = { code: expect.stringMatching(/^(55P03|57014|AUDIT_WRITE_TIMEOUT)$/) as unknown };

  it(
    'a write that times out on a locked table leaves nothing waiting on the server, and no row appears once the lock is released',
    async () => {
      const locker = await db.connect('audit');
      const waiting = record('nda-locked');
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
        await expect(writer.insert([waiting])).rejects.toMatchObject(timedOut);
        await noWriterBackend('waiting for a lock');
      } finally {
        await locker.query('COMMIT');
        await locker.end();
      }
      // The pool's one connection: free once any statement still on it has ended.
      await dataSource.query('SELECT 1');
      expect(await rows([waiting.id])).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a write whose statement runs past the timeout (a trigger that sleeps) is cancelled by the server and never commits',
    async () => {
      const slow = record('nda-slow');
      await db.query(
        `CREATE FUNCTION audit_test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.entity_id = 'nda-slow' THEN PERFORM pg_sleep(8); END IF; RETURN NEW; END $$`,
        [],
        'audit',
      );
      await db.query(
        'CREATE TRIGGER audit_test_slow BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_test_slow()',
        [],
        'audit',
      );
      try {
        await expect(writer.insert([slow])).rejects.toMatchObject(timedOut);
        await noWriterBackend('active');
        expect(await rows([slow.id])).toEqual([]);
      } finally {
        await db.query('DROP TRIGGER audit_test_slow ON audit_log; DROP FUNCTION audit_test_slow()', [], 'audit');
      }
      await dataSource.query('SELECT 1');
      expect(await rows([slow.id])).toEqual([]);
    },
    TEST_TIMEOUT_MS * 2,
  );

  it(
    'a write waiting for the pool’s only connection, held by another transaction, rejects with AUDIT_WRITE_TIMEOUT',
    async () => {
      holder = dataSource.createQueryRunner();
      await holder.connect();
      await holder.startTransaction();
      await holder.query('SELECT 1');

      const waiting = record('nda-pool-wait');
      const started = performance.now();
      const error = await writer.insert([waiting]).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      const ms = performance.now() - started;
      expect(error).toMatchObject({ code: WRITE_TIMEOUT_CODE });
      expect(ms).toBeGreaterThanOrEqual(WRITE_TIMEOUT_MS * 0.9);
    },
    TEST_TIMEOUT_MS,
  );
});
