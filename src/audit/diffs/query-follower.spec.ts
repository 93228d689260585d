import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { auditScope, currentAuditContext, newAuditContext, takeEntityChanges } from '../audit-context';
import { queryAnswered, queryFailed, transactionEnded } from './query-follower';
import { stageChange } from './transaction-changes';
import { watchAuditedTables } from './unheard-writes';

const dataSource = { options: {} } as DataSource;
watchAuditedTables(dataSource, [{ tableName: 'contract', schema: undefined } as unknown as EntityMetadata]);

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
      queryFailed(queryRunner);
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
});
