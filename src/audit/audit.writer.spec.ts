import { type Repository } from 'typeorm';
import { AuditEntryNormalizer, type AuditRecord } from './audit-entry';
import { type AuditLog } from './audit-log.entity';
import { AUDIT_DEFAULTS } from './audit-options';
import { AuditWriter } from './audit.writer';
import { WRITE_TIMEOUT_CODE } from './db-error';

// The writer's own timer is the only bound on a write that hangs before PostgreSQL's timeouts can
// act (a dead socket, a pool with no free connection, a DataSource that never connects). Each test
// has a jest timeout far above WRITE_TIMEOUT_MS and far below the default, so a missing bound
// fails fast and by name. The pool wait against a real server is in test/audit-writer.e2e-spec.ts.
const WRITE_TIMEOUT_MS = 100;
const TEST_TIMEOUT_MS = 5000;

const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, AUDIT_DEFAULTS.maxEntryBytes);
const record = (n: number): AuditRecord => normalizer.normalize({ action: 'nda_created', entityType: 'NDA', entityId: `nda-${n}` }).record;
const never = <T>() => new Promise<T>(() => undefined);

/** The parts of a TypeORM repository the writer uses; `connection` absent means "already connected". */
function repository(parts: {
  query?: () => Promise<unknown>;
  connection?: { isInitialized: boolean; initialize: () => Promise<unknown> };
}): Repository<AuditLog> {
  return {
    metadata: { tablePath: 'audit_log' },
    manager: { query: parts.query ?? (() => Promise.resolve()), connection: parts.connection },
  } as unknown as Repository<AuditLog>;
}

/** Runs `work` and returns how it settled and after how many milliseconds. */
async function timed(work: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await work();
    return { error: undefined, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}

describe('AuditWriter write timeout', () => {
  it(
    'rejects a write that never settles with AUDIT_WRITE_TIMEOUT once writeTimeoutMs has passed',
    async () => {
      const writer = new AuditWriter(repository({ query: never }), WRITE_TIMEOUT_MS);
      const { error, ms } = await timed(() => writer.insert([record(1)]));
      expect(error).toMatchObject({ code: WRITE_TIMEOUT_CODE, message: `audit write not committed within ${WRITE_TIMEOUT_MS} ms` });
      expect(ms).toBeGreaterThanOrEqual(WRITE_TIMEOUT_MS * 0.9);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'rejects the connect path with AUDIT_WRITE_TIMEOUT when initialize() never settles',
    async () => {
      const connection = { isInitialized: false, initialize: jest.fn(never) };
      const writer = new AuditWriter(repository({ connection }), WRITE_TIMEOUT_MS);
      expect(writer.connected).toBe(false);
      const { error, ms } = await timed(() => writer.connectWithinTimeout());
      expect(error).toMatchObject({ code: WRITE_TIMEOUT_CODE });
      expect(ms).toBeGreaterThanOrEqual(WRITE_TIMEOUT_MS * 0.9);
      expect(connection.initialize).toHaveBeenCalledTimes(1);
      expect(writer.connected).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'rejects an insert waiting for a connection that never comes with AUDIT_WRITE_TIMEOUT, without starting the insert',
    async () => {
      const query = jest.fn(() => Promise.resolve());
      const connection = { isInitialized: false, initialize: jest.fn(never) };
      const writer = new AuditWriter(repository({ query, connection }), WRITE_TIMEOUT_MS);
      const { error } = await timed(() => writer.insert([record(1)]));
      expect(error).toMatchObject({ code: WRITE_TIMEOUT_CODE });
      expect(query).not.toHaveBeenCalled();
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'passes on the error of a write that fails before the timeout, and resolves one that commits',
    async () => {
      const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      const failing = new AuditWriter(repository({ query: () => Promise.reject(refused) }), WRITE_TIMEOUT_MS);
      await expect(failing.insert([record(1)])).rejects.toBe(refused);
      const committing = new AuditWriter(repository({ query: () => Promise.resolve() }), WRITE_TIMEOUT_MS);
      await expect(committing.insert([record(2)])).resolves.toBeUndefined();
    },
    TEST_TIMEOUT_MS,
  );
});
