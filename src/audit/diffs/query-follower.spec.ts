import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { auditScope, currentAuditContext, newAuditContext, takeEntityChanges } from '../audit-context';
import { queryAnswered, queryFailed, statusNeeded, transactionEnded } from './query-follower';
import { stageChange } from './transaction-changes';
import { watchAuditedTables } from './unheard-writes';

const dataSource = { options: {} } as DataSource;
/** An audited entity whose table name is longer than PostgreSQL keeps (63 bytes): its table is that name cut. */
const LONG_TABLE = `contract_${'x'.repeat(60)}`;
watchAuditedTables(dataSource, [
  { tableName: 'contract', schema: undefined } as unknown as EntityMetadata,
  { tableName: LONG_TABLE, schema: undefined } as unknown as EntityMetadata,
]);

/** A runner outside TypeORM's transactions whose connection status the test sets, as `pg` would after each answer. */
function runner() {
  const state = { status: 'I' };
  const queryRunner = {
    connection: dataSource,
    isTransactionActive: false,
    transactionDepth: 0,
    databaseConnection: { getTransactionStatus: () => state.status },
  } as unknown as QueryRunner;
  /** Sends `sql`, after which pg reports `status`; `commands` are PostgreSQL's answers, one per statement. */
  const send = (sql: string, status: 'I' | 'T', ...commands: string[]) => {
    state.status = status;
    const answers = commands.map((command) => ({ command }));
    queryAnswered(queryRunner, sql, answers.length === 1 ? answers[0] : answers);
  };
  return { queryRunner, state, send };
}

const omitted = () => currentAuditContext()?.omitted;

describe('the query follower', () => {
  it('counts a raw write to an audited table named longer than 63 bytes, spelled whole or as PostgreSQL cuts it', () => {
    auditScope(() => {
      const { send } = runner();
      send(`UPDATE ${LONG_TABLE} SET a = 1`, 'I', 'UPDATE');
      send(`UPDATE "${LONG_TABLE.slice(0, 63)}" SET a = 1`, 'I', 'UPDATE');
      expect(omitted()).toBe(2);
    });
  });

  it('counts a raw write committed by COMMIT AND CHAIN, and none rolled back by ROLLBACK AND CHAIN', () => {
    auditScope(() => {
      const { send } = runner();
      send('BEGIN', 'T', 'BEGIN');
      send('UPDATE contract SET a = 1', 'T', 'UPDATE');
      send('COMMIT AND CHAIN', 'T', 'COMMIT');
      send('ROLLBACK', 'I', 'ROLLBACK');
      expect(omitted()).toBe(1);
      send('BEGIN', 'T', 'BEGIN');
      send('DELETE FROM contract', 'T', 'DELETE');
      send('ROLLBACK AND CHAIN', 'T', 'ROLLBACK');
      send('COMMIT', 'I', 'COMMIT');
      expect(omitted()).toBe(1);
    });
  });

  it('reads a string of several statements in order: ROLLBACK drops the writes before it, outside a block too', () => {
    auditScope(() => {
      const { send } = runner();
      send('BEGIN; UPDATE contract SET a = 1; ROLLBACK', 'I', 'BEGIN', 'UPDATE', 'ROLLBACK');
      send('UPDATE contract SET a = 1; ROLLBACK', 'I', 'UPDATE', 'ROLLBACK');
      expect(omitted()).toBe(0);
      // PostgreSQL commits the write after the ROLLBACK with the string.
      send('UPDATE contract SET a = 1; ROLLBACK; UPDATE contract SET a = 2', 'I', 'UPDATE', 'ROLLBACK', 'UPDATE');
      expect(omitted()).toBe(1);
      // BEGIN makes the implicit block a block of its own, which a later ROLLBACK ends.
      send('UPDATE contract SET a = 1; BEGIN', 'T', 'UPDATE', 'BEGIN');
      send('ROLLBACK', 'I', 'ROLLBACK');
      expect(omitted()).toBe(1);
    });
  });

  it('drops the raw writes made since a raw savepoint when the block rolls back to it, alone or in a string', () => {
    auditScope(() => {
      const { send } = runner();
      send('BEGIN', 'T', 'BEGIN');
      send('UPDATE contract SET a = 1', 'T', 'UPDATE');
      send('SAVEPOINT s', 'T', 'SAVEPOINT');
      send('UPDATE contract SET a = 2', 'T', 'UPDATE');
      send('ROLLBACK TO SAVEPOINT s', 'T', 'ROLLBACK');
      send('COMMIT', 'I', 'COMMIT');
      expect(omitted()).toBe(1);
      send('BEGIN; SAVEPOINT s; TRUNCATE contract; ROLLBACK TO s; COMMIT', 'I', 'BEGIN', 'SAVEPOINT', 'TRUNCATE', 'ROLLBACK', 'COMMIT');
      expect(omitted()).toBe(1);
    });
  });

  it('hands over a held change on `COMMIT; BEGIN` and drops it on `ROLLBACK; BEGIN`', () => {
    const context = newAuditContext('request');
    const { queryRunner, state, send } = runner();
    send('BEGIN', 'T', 'BEGIN');
    stageChange(queryRunner, context, { value: 'committed', bytes: 10 }, 1000);
    send('COMMIT; BEGIN', 'T', 'COMMIT', 'BEGIN');
    stageChange(queryRunner, context, { value: 'rolled back', bytes: 10 }, 1000);
    send('ROLLBACK; BEGIN', 'T', 'ROLLBACK', 'BEGIN');
    send('COMMIT', 'I', 'COMMIT');
    expect(state.status).toBe('I');
    expect(takeEntityChanges(context)).toEqual({ entities: ['committed'] });
  });

  it('drops a held change whose COMMIT inside a string PostgreSQL answered with ROLLBACK (a failed block)', () => {
    const context = newAuditContext('request');
    const { queryRunner, send } = runner();
    send('BEGIN', 'T', 'BEGIN');
    stageChange(queryRunner, context, { value: 'failed', bytes: 10 }, 1000);
    send('COMMIT; BEGIN', 'T', 'ROLLBACK', 'BEGIN');
    send('COMMIT', 'I', 'COMMIT');
    expect(takeEntityChanges(context)).toBeUndefined();
  });

  it('counts what a block held when it ended unseen: through the driver, on a failed query, or under TypeORM', () => {
    auditScope(() => {
      const { queryRunner, state, send } = runner();
      send('BEGIN', 'T', 'BEGIN');
      send('UPDATE contract SET a = 1', 'T', 'UPDATE');
      // COMMIT through the driver's client: the next query finds the connection idle.
      send('SELECT 1', 'I', 'SELECT');
      expect(omitted()).toBe(1);
      send('BEGIN', 'T', 'BEGIN');
      send('UPDATE contract SET a = 1', 'T', 'UPDATE');
      state.status = 'I';
      queryFailed(queryRunner, 'SELECT 1/0');
      expect(omitted()).toBe(2);
      send('BEGIN', 'T', 'BEGIN');
      // TypeORM's own transaction on top ends the block: the runner is idle after it.
      transactionEnded(queryRunner);
      send('UPDATE contract SET a = 1; ROLLBACK', 'I', 'UPDATE', 'ROLLBACK');
      expect(omitted()).toBe(2);
      send('UPDATE contract SET a = 1', 'I', 'UPDATE');
      expect(omitted()).toBe(3);
    });
  });

  it("counts a qualified write only in the entity's schema, and no write outside an audit context", () => {
    auditScope(() => {
      const { send } = runner();
      send('UPDATE archive.contract SET a = 1', 'I', 'UPDATE');
      send('UPDATE other SET a = 1', 'I', 'UPDATE');
      expect(omitted()).toBe(0);
      send('UPDATE "public".contract SET a = 1', 'I', 'UPDATE');
      expect(omitted()).toBe(1);
    });
    const { send } = runner();
    expect(() => send('UPDATE contract SET a = 1', 'I', 'UPDATE')).not.toThrow();
  });

  it('applies a failed string up to its last COMMIT or ROLLBACK when that one ran, and nothing past it', () => {
    auditScope(() => {
      const { queryRunner, state } = runner();
      const fail = (sql: string, status: 'I' | 'T') => {
        state.status = status;
        queryFailed(queryRunner, sql);
      };
      fail('BEGIN; UPDATE contract SET a = 1; COMMIT; SELECT 1/0', 'I');
      expect(omitted()).toBe(1);
      fail('UPDATE contract SET a = 1; COMMIT; UPDATE contract SET a = 2; SELECT 1/0', 'I');
      expect(omitted()).toBe(2);
      fail('BEGIN; UPDATE contract SET a = 1; ROLLBACK; SELECT 1/0', 'I');
      expect(omitted()).toBe(2);
      // Still in a block after the failure, and no BEGIN after the COMMIT: the failure came before it.
      fail('BEGIN; UPDATE contract SET a = 1; SELECT 1/0; COMMIT; SELECT 1', 'T');
      expect(omitted()).toBe(2);
      fail('ROLLBACK', 'I');
      // A string that ends with its COMMIT may have failed at it: not taken as committed.
      fail('UPDATE contract SET a = 1; COMMIT', 'I');
      expect(omitted()).toBe(2);
      fail('BEGIN; UPDATE contract SET a = 1; COMMIT; BEGIN; UPDATE contract SET a = 2; SELECT 1/0', 'T');
      expect(omitted()).toBe(3);
    });
  });

  it('counts EXECUTE of a statement prepared as a write on the same connection, until it is deallocated', () => {
    auditScope(() => {
      const { send } = runner();
      send('PREPARE up (text) AS UPDATE contract SET title = $1', 'I', 'PREPARE');
      send('PREPARE look AS SELECT * FROM contract', 'I', 'PREPARE');
      expect(omitted()).toBe(0);
      send("EXECUTE up('a')", 'I', 'UPDATE');
      send('EXECUTE look', 'I', 'SELECT');
      expect(omitted()).toBe(1);
      send("BEGIN; EXECUTE up('b'); ROLLBACK", 'I', 'BEGIN', 'UPDATE', 'ROLLBACK');
      expect(omitted()).toBe(1);
      send('DEALLOCATE up; PREPARE up AS SELECT 1; EXECUTE up', 'I', 'DEALLOCATE', 'PREPARE', 'SELECT');
      expect(omitted()).toBe(1);
      send('PREPARE del AS DELETE FROM contract', 'I', 'PREPARE');
      send('DISCARD ALL', 'I', 'DISCARD');
      send('EXECUTE del', 'I', 'DELETE');
      expect(omitted()).toBe(1);
    });
  });

  it('keeps what a failed string may not have prepared or deallocated as it was, where an EXECUTE could tell apart', () => {
    auditScope(() => {
      const { queryRunner, state, send } = runner();
      const fail = (sql: string) => {
        state.status = 'I';
        queryFailed(queryRunner, sql);
      };
      send('PREPARE purge AS DELETE FROM contract', 'I', 'PREPARE');
      send('PREPARE look AS SELECT 1', 'I', 'PREPARE');
      // Refused: the names exist (42P05).
      fail('PREPARE purge AS SELECT 1');
      fail('PREPARE look AS DELETE FROM contract');
      // Each may have failed before its DEALLOCATE or DISCARD ran.
      fail('SELECT 1/0; DEALLOCATE purge');
      fail('DISCARD ALL');
      send('EXECUTE purge', 'I', 'DELETE');
      send('EXECUTE look', 'I', 'SELECT');
      expect(omitted()).toBe(1);
      // A name not prepared before: if the PREPARE did not run, an EXECUTE of it fails.
      fail('PREPARE wipe AS DELETE FROM contract; SELECT 1/0');
      send('EXECUTE wipe', 'I', 'DELETE');
      expect(omitted()).toBe(2);
    });
  });

  it('ends every level of a TypeORM transaction at a COMMIT or ROLLBACK sent as SQL in it', () => {
    auditScope(() => {
      const { queryRunner, state } = runner();
      const context = currentAuditContext();
      if (!context) throw new Error('no context');
      Object.assign(queryRunner, { isTransactionActive: true, transactionDepth: 2 });
      state.status = 'T';
      stageChange(queryRunner, context, { value: 'committed', bytes: 10 }, 10_000);
      queryAnswered(queryRunner, 'UPDATE contract SET a = 1', { command: 'UPDATE' });
      queryAnswered(queryRunner, 'COMMIT; BEGIN', [{ command: 'COMMIT' }, { command: 'BEGIN' }]);
      expect(omitted()).toBe(1);
      stageChange(queryRunner, context, { value: 'rolled back', bytes: 10 }, 10_000);
      queryAnswered(queryRunner, 'UPDATE contract SET a = 2', { command: 'UPDATE' });
      state.status = 'I';
      queryAnswered(queryRunner, 'ROLLBACK', { command: 'ROLLBACK' });
      // pg says no block is open: what follows commits at once, whatever TypeORM does next.
      stageChange(queryRunner, context, { value: 'at once', bytes: 10 }, 10_000);
      queryAnswered(queryRunner, 'UPDATE contract SET a = 3', { command: 'UPDATE' });
      Object.assign(queryRunner, { isTransactionActive: false, transactionDepth: 0 });
      expect(takeEntityChanges(context)).toEqual({ entities: ['committed', 'at once'], entitiesOmitted: 2 });
    });
  });

  it.each([
    // PostgreSQL answers ROLLBACK TO retry only if the string set it (after ROLLBACK TO s).
    ['ROLLBACK TO SAVEPOINT retry', { entities: ['before s', 'after the recovery'], entitiesOmitted: 2 }],
    // It answers ROLLBACK TO t only if the string failed before ROLLBACK TO s: what came after t is dropped.
    ['ROLLBACK TO t', { entities: ['before s', 'after the recovery'], entitiesOmitted: 1 }],
  ])('follows the savepoint commands of a failed string as far as can be known, then %s', (recovery, expected) => {
    const context = newAuditContext('request');
    const { queryRunner, state, send } = runner();
    send('BEGIN', 'T', 'BEGIN');
    stageChange(queryRunner, context, { value: 'before s', bytes: 10 }, 1000);
    send('SAVEPOINT s', 'T', 'SAVEPOINT');
    stageChange(queryRunner, context, { value: 'after s', bytes: 10 }, 1000);
    send('SAVEPOINT t', 'T', 'SAVEPOINT');
    stageChange(queryRunner, context, { value: 'after t', bytes: 10 }, 1000);
    // Whether ROLLBACK TO s ran is not known: what was held since s is counted from now on.
    state.status = 'E';
    queryFailed(queryRunner, 'ROLLBACK TO s; SAVEPOINT retry; SELECT 1/0');
    send(recovery, 'T', 'ROLLBACK');
    stageChange(queryRunner, context, { value: 'after the recovery', bytes: 10 }, 1000);
    send('COMMIT', 'I', 'COMMIT');
    expect(takeEntityChanges(context)).toEqual(expected);
  });

  it.each([
    // The last statement failed or never ran: `step` stays the first one, and A goes with it.
    ['SELECT 1/0; SAVEPOINT step', 'ROLLBACK TO SAVEPOINT step', { entities: ['B'] }],
    ['SAVEPOINT step', 'ROLLBACK TO SAVEPOINT step', { entities: ['B'] }],
    // Set or not, as the failure stood: A may be gone, so it is counted, not listed.
    ['SELECT 1/0; SAVEPOINT step; SELECT 2', 'ROLLBACK TO SAVEPOINT step', { entities: ['B'], entitiesOmitted: 1 }],
    // Never ran: A was not rolled back by it.
    ['SELECT 1/0; ROLLBACK TO step', 'ROLLBACK TO later', { entities: ['A', 'B'] }],
    // RELEASE keeps what was held, whichever `step` it ends.
    ['SAVEPOINT step; SAVEPOINT inner; SELECT 1/0', 'ROLLBACK TO inner; RELEASE step', { entities: ['A', 'B'] }],
  ])('takes the savepoint commands of a failed string %s as run only where they may have run, then %s', (failed, recovery, expected) => {
    const context = newAuditContext('request');
    const { queryRunner, state, send } = runner();
    send('BEGIN', 'T', 'BEGIN');
    send('SAVEPOINT step', 'T', 'SAVEPOINT');
    stageChange(queryRunner, context, { value: 'A', bytes: 10 }, 1000);
    send('SAVEPOINT later', 'T', 'SAVEPOINT');
    state.status = 'E';
    queryFailed(queryRunner, failed);
    send(recovery, 'T', 'ROLLBACK');
    stageChange(queryRunner, context, { value: 'B', bytes: 10 }, 1000);
    send('COMMIT', 'I', 'COMMIT');
    expect(takeEntityChanges(context)).toEqual(expected);
  });
});

describe('whether a failed query waits for the status after it', () => {
  it('waits for a string with a transaction command, or on a connection in a block the follower holds; no other', () => {
    const { queryRunner, send } = runner();
    const needed = (sql: string) => statusNeeded(queryRunner, sql);
    expect(['INSERT INTO note VALUES (1)', 'SELECT 1/0', "SELECT 'COMMIT'"].map(needed)).toEqual([false, false, false]);
    expect(['COMMIT; SELECT 1/0', 'BEGIN; SELECT 1/0', 'SAVEPOINT s; SELECT 1/0', 'ROLLBACK TO s', 'RELEASE s'].map(needed)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    auditScope(() => {
      send('BEGIN', 'T', 'BEGIN');
      send('UPDATE contract SET title = 1', 'T', 'UPDATE');
      expect(needed('INSERT INTO note VALUES (1)')).toBe(true);
    });
  });
});
