import { type Repository } from 'typeorm';
import { type AuditRecord } from './audit-entry';
import { AuditLog } from './audit-log.entity';
import { AuditConfigError } from './audit.errors';

/** Inserts rows through methods a test double (or a spy) put in place of the repository's own. */
export type DoubleInsert = (rows: AuditLog[]) => Promise<void>;

/**
 * How the writer reaches `audit_log` through the repository under `getRepositoryToken(AuditLog)`.
 * A real TypeORM repository is written with the module's own SQL (one multi-row INSERT … ON
 * CONFLICT per batch). A repository whose `insert` (or `save`) was replaced — a double such as
 * `{ insert: jest.fn() }`, or `jest.spyOn(repository, 'insert')` — is written through that
 * method instead, so the double decides whether the database "fails". Returns `undefined` for
 * the real path.
 *
 * @example
 * const insert = doubleInsert({ insert: async () => { throw new Error('db down'); } } as never);
 * await insert?.([row]); // rejects: 'db down'
 */
export function doubleInsert(repository: Repository<AuditLog>): DoubleInsert | undefined {
  const target = repository as Partial<Record<'insert' | 'save', (rows: AuditLog[]) => Promise<unknown>>> & Partial<Repository<AuditLog>>;
  // Not `metadata`: it throws until the DataSource is initialized, which may be after start-up.
  const real = typeof target.manager?.query === 'function';
  const replaced = (name: 'insert' | 'save') => typeof target[name] === 'function' && (!real || Object.hasOwn(target, name));
  if (real && !replaced('insert') && !replaced('save')) return undefined;
  const name = replaced('insert') ? 'insert' : replaced('save') ? 'save' : undefined;
  if (!name) throw AuditConfigError.invalidRepository();
  const write = (rows: AuditLog[]) => (target[name] as (rows: AuditLog[]) => Promise<unknown>).call(repository, rows);
  return async (rows) => {
    try {
      await write(rows);
      return;
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
    // Without ON CONFLICT, a row a retry already wrote is a unique violation: the rest go one by one.
    if (rows.length === 1) return;
    for (const row of rows) {
      try {
        await write([row]);
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
      }
    }
  };
}

/** The entity a double receives for one record. */
export function toAuditLog(record: AuditRecord): AuditLog {
  return Object.assign(new AuditLog(), { ...record, occurredAt: new Date(record.occurredAt) });
}

function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; driverError?: { code?: unknown } } | null;
  return (e?.driverError?.code ?? e?.code) === '23505';
}
