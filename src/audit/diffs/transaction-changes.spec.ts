import { type QueryRunner } from 'typeorm';
import { newAuditContext, takeEntityChanges } from '../audit-context';
import { queryAnswered, queryFailed } from './query-follower';
import { confirmRecordedRows, holdForRecord, stageChange, transactionCommitted, transactionRolledBack } from './transaction-changes';

/** A query runner as TypeORM moves it: depth 1 the transaction, 2+ savepoints; events fire after the depth changed. */
function runner() {
  const state = { isTransactionActive: false, transactionDepth: 0 };
  const queryRunner = state as unknown as QueryRunner;
  return {
    queryRunner,
    begin: () => Object.assign(state, { isTransactionActive: true, transactionDepth: state.transactionDepth + 1 }),
    commit: () => {
      Object.assign(state, { transactionDepth: state.transactionDepth - 1, isTransactionActive: state.transactionDepth > 1 });
      transactionCommitted(queryRunner);
    },
    rollback: () => {
      Object.assign(state, { transactionDepth: state.transactionDepth - 1, isTransactionActive: state.transactionDepth > 1 });
      transactionRolledBack(queryRunner);
    },
  };
}

const change = (name: string) => ({ value: name, bytes: 10 });
const MAX = 1000;

describe('changes held per transaction', () => {
  it('hands a change made outside a transaction to the context at once', () => {
    const context = newAuditContext('scope');
    stageChange(runner().queryRunner, context, change('a'), MAX);
    expect(takeEntityChanges(context)).toEqual({ entities: ['a'] });
  });

  it('hands over a transaction’s changes on its commit, a released savepoint’s with its parent', () => {
    const context = newAuditContext('scope');
    const tx = runner();
    tx.begin();
    stageChange(tx.queryRunner, context, change('outer'), MAX);
    tx.begin();
    stageChange(tx.queryRunner, context, change('inner'), MAX);
    tx.commit();
    expect(context.entities).toBeUndefined();
    tx.commit();
    expect(takeEntityChanges(context)).toEqual({ entities: ['outer', 'inner'] });
  });

  it('drops the changes of a savepoint rolled back, and all of them when the transaction rolls back', () => {
    const context = newAuditContext('scope');
    const tx = runner();
    tx.begin();
    stageChange(tx.queryRunner, context, change('kept'), MAX);
    tx.begin();
    stageChange(tx.queryRunner, context, change('dropped'), MAX);
    tx.rollback();
    tx.commit();
    expect(takeEntityChanges(context)).toEqual({ entities: ['kept'] });

    tx.begin();
    stageChange(tx.queryRunner, context, change('undone'), MAX);
    tx.rollback();
    tx.begin();
    tx.commit();
    expect(takeEntityChanges(context)).toBeUndefined();
  });

  it('holds at most maxBytes per transaction, counting the rest, and forgets the count of what rolls back', () => {
    const context = newAuditContext('scope');
    const tx = runner();
    tx.begin();
    for (const name of ['a', 'b', 'c']) stageChange(tx.queryRunner, context, change(name), 25);
    tx.begin();
    stageChange(tx.queryRunner, context, change('rolled back'), 25);
    tx.rollback();
    tx.commit();
    expect(takeEntityChanges(context)).toEqual({ entities: ['a', 'b'], entitiesOmitted: 1 });
  });

  it('gives record() the uncommitted changes once, within the byte bound, counting the rest', () => {
    const context = newAuditContext('request');
    const tx = runner();
    tx.begin();
    for (const name of ['a', 'b', 'c']) stageChange(tx.queryRunner, context, change(name), 25);
    const hold = holdForRecord(tx.queryRunner, context);
    expect(hold.changes).toEqual({ entities: ['a', 'b'], entitiesOmitted: 1 });
    hold.written();
    expect(holdForRecord(tx.queryRunner, context).changes).toBeUndefined();
    tx.commit();
    expect(takeEntityChanges(context)).toBeUndefined();
  });

  it('marks the context only when the record() row’s transaction commits', () => {
    const context = newAuditContext('request');
    const tx = runner();
    tx.begin();
    holdForRecord(tx.queryRunner, context).written();
    expect(context.recordedAtomically).toBe(false);
    tx.rollback();
    expect(context.recordedAtomically).toBe(false);
    tx.begin();
    holdForRecord(tx.queryRunner, context).written();
    tx.commit();
    expect(context.recordedAtomically).toBe(true);
  });

  it('marks the context at once for a row written outside a transaction, and not for one whose insert failed', () => {
    const context = newAuditContext('request');
    const hold = holdForRecord(runner().queryRunner, context);
    hold.failed();
    expect(context.recordedAtomically).toBe(false);
    holdForRecord(undefined, context).written();
    expect(context.recordedAtomically).toBe(true);
  });

  it('holds a change made in a block TypeORM does not report until its end is seen, and counts one ended unseen', () => {
    let status = 'T';
    const tx = runner();
    Object.assign(tx.queryRunner, { databaseConnection: { getTransactionStatus: () => status } });
    const context = newAuditContext('request');
    stageChange(tx.queryRunner, context, change('committed'), MAX);
    expect(takeEntityChanges(context)).toBeUndefined();
    status = 'I';
    queryAnswered(tx.queryRunner, 'COMMIT', { command: 'COMMIT' });
    expect(takeEntityChanges(context)).toEqual({ entities: ['committed'] });

    status = 'T';
    stageChange(tx.queryRunner, context, change('rolled back'), MAX);
    queryAnswered(tx.queryRunner, 'SELECT 1', { command: 'SELECT' });
    status = 'I';
    queryAnswered(tx.queryRunner, 'ROLLBACK', { command: 'ROLLBACK' });
    expect(takeEntityChanges(context)).toBeUndefined();

    status = 'T';
    stageChange(tx.queryRunner, context, change('unseen'), MAX);
    expect(takeEntityChanges(context)).toBeUndefined();
    // Ended through the driver: no answer was seen, so the change is counted, not listed.
    status = 'I';
    expect(takeEntityChanges(context)).toEqual({ entities: [], entitiesOmitted: 1 });
  });

  it('counts a raw block’s changes when its COMMIT failed, or its runner was released, whatever the connection says next', () => {
    let status = 'T';
    const tx = runner();
    Object.assign(tx.queryRunner, { databaseConnection: { getTransactionStatus: () => status } });
    const context = newAuditContext('request');
    stageChange(tx.queryRunner, context, change('deferred check failed'), MAX);
    status = 'I';
    queryFailed(tx.queryRunner, 'COMMIT');
    status = 'T';
    expect(takeEntityChanges(context)).toEqual({ entities: [], entitiesOmitted: 1 });

    stageChange(tx.queryRunner, context, change('ended through the driver'), MAX);
    Object.assign(tx.queryRunner, { isReleased: true });
    // The pool has handed the connection to another runner, in a block of its own.
    expect(takeEntityChanges(context)).toEqual({ entities: [], entitiesOmitted: 1 });
  });

  it('follows savepoints sent as SQL: ROLLBACK TO drops what was held since, RELEASE keeps it', () => {
    let status = 'T';
    const tx = runner();
    Object.assign(tx.queryRunner, { databaseConnection: { getTransactionStatus: () => status } });
    const context = newAuditContext('request');
    stageChange(tx.queryRunner, context, change('kept'), MAX);
    queryAnswered(tx.queryRunner, ' -- outer\nSAVEPOINT a', { command: 'SAVEPOINT' });
    stageChange(tx.queryRunner, context, change('undone'), MAX);
    queryAnswered(tx.queryRunner, 'savepoint "B"', { command: 'SAVEPOINT' });
    stageChange(tx.queryRunner, context, change('undone too'), MAX);
    queryAnswered(tx.queryRunner, 'rollback to a;', { command: 'ROLLBACK' });
    stageChange(tx.queryRunner, context, change('released'), MAX);
    queryAnswered(tx.queryRunner, 'RELEASE SAVEPOINT a', { command: 'RELEASE' });
    status = 'I';
    queryAnswered(tx.queryRunner, 'SELECT 1; COMMIT', [{ command: 'SELECT' }, { command: 'COMMIT' }]);
    expect(takeEntityChanges(context)).toEqual({ entities: ['kept', 'released'] });

    // In a transaction TypeORM opened (pg reports its block); its own savepoints are levels, not followed as SQL.
    tx.begin();
    status = 'T';
    stageChange(tx.queryRunner, context, change('outer'), MAX);
    queryAnswered(tx.queryRunner, 'SAVEPOINT s1', { command: 'SAVEPOINT' });
    queryAnswered(tx.queryRunner, 'SAVEPOINT typeorm_1', { command: 'SAVEPOINT' });
    tx.begin();
    stageChange(tx.queryRunner, context, change('inner'), MAX);
    queryAnswered(tx.queryRunner, 'RELEASE SAVEPOINT typeorm_1', { command: 'RELEASE' });
    tx.commit();
    queryAnswered(tx.queryRunner, 'ROLLBACK TO SAVEPOINT s1', { command: 'ROLLBACK' });
    stageChange(tx.queryRunner, context, change('after'), MAX);
    tx.commit();
    expect(takeEntityChanges(context)).toEqual({ entities: ['outer', 'after'] });
  });

  it('gives back what a record() row carried from before a savepoint sent as SQL when the row is rolled back to it', () => {
    const tx = runner();
    Object.assign(tx.queryRunner, { databaseConnection: { getTransactionStatus: () => 'T' } });
    const context = newAuditContext('request');
    tx.begin();
    stageChange(tx.queryRunner, context, change('kept'), MAX);
    queryAnswered(tx.queryRunner, 'SAVEPOINT step', { command: 'SAVEPOINT' });
    stageChange(tx.queryRunner, context, change('undone'), MAX);
    const hold = holdForRecord(tx.queryRunner, context);
    expect(hold.changes).toEqual({ entities: ['kept', 'undone'] });
    void hold.written();
    queryAnswered(tx.queryRunner, 'ROLLBACK TO SAVEPOINT step', { command: 'ROLLBACK' });
    stageChange(tx.queryRunner, context, change('after'), MAX);
    // The savepoint lives on: rolled back to again, it keeps what was given back.
    queryAnswered(tx.queryRunner, 'ROLLBACK TO SAVEPOINT step', { command: 'ROLLBACK' });
    tx.commit();
    expect(context.recordedAtomically).toBe(false);
    expect(takeEntityChanges(context)).toEqual({ entities: ['kept'] });
  });

  it('has a record() row in a raw block carry what the block holds, and drops only what a savepoint undid after it', () => {
    const tx = runner();
    Object.assign(tx.queryRunner, { databaseConnection: { getTransactionStatus: () => 'T' } });
    const context = newAuditContext('request');
    stageChange(tx.queryRunner, context, change('before'), MAX);
    queryAnswered(tx.queryRunner, 'SAVEPOINT s1', { command: 'SAVEPOINT' });
    stageChange(tx.queryRunner, context, change('carried'), MAX);
    expect(holdForRecord(tx.queryRunner, context).changes).toEqual({ entities: ['before', 'carried'] });
    stageChange(tx.queryRunner, context, change('undone'), MAX);
    queryAnswered(tx.queryRunner, 'ROLLBACK TO SAVEPOINT s1', { command: 'ROLLBACK' });
    const failed = holdForRecord(tx.queryRunner, context);
    expect(failed.changes).toBeUndefined();
    failed.failed();
    stageChange(tx.queryRunner, context, change('given back'), MAX);
    const hold = holdForRecord(tx.queryRunner, context);
    expect(hold.changes).toEqual({ entities: ['given back'] });
    hold.failed();
    expect(holdForRecord(tx.queryRunner, context).changes).toEqual({ entities: ['given back'] });
  });

  it('asks PostgreSQL, on a query runner in no transaction TypeORM reports, whether a block is open', async () => {
    const at = { id: 'r-0', occurredAt: '2026-12-04T10:00:00.000Z', table: '"audit_log"' };
    const lookedUp: unknown[][] = [];
    const check = async (open: unknown, kind: 'request' | 'scope' = 'request') => {
      const context = newAuditContext(kind);
      const asked: string[] = [];
      const queryRunner = Object.assign(runner().queryRunner, {
        query: (text: string) => {
          asked.push(text);
          return open instanceof Error ? Promise.reject(open) : Promise.resolve([{ open }]);
        },
        // A connected DataSource whose pool hands out a connection that finds the row.
        dataSource: {
          isInitialized: true,
          driver: {
            master: {
              connect: () =>
                Promise.resolve({
                  query: (_: string, parameters: unknown[]) => {
                    lookedUp.push(parameters);
                    return Promise.resolve({ rows: [{ '?column?': 1 }] });
                  },
                  release: () => undefined,
                  once: () => undefined,
                  removeListener: () => undefined,
                }),
            },
          },
        },
      });
      await holdForRecord(queryRunner, context, 1000).written(at);
      const marked = context.recordedAtomically;
      const unsettled = context.unsettled?.length ?? 0;
      if (context.unsettled) expect(await context.unsettled[0]()).toBe(true);
      return { marked, unsettled, asked: asked.length };
    };
    expect(await check(false)).toEqual({ marked: true, unsettled: 0, asked: 1 });
    expect(lookedUp).toEqual([]);
    expect(await check(true)).toEqual({ marked: false, unsettled: 1, asked: 1 });
    expect(lookedUp).toEqual([['r-0', '2026-12-04T10:00:00.000Z']]);
    // PostgreSQL could not say (a failed block, a lost connection): the row is looked up too.
    expect(await check(new Error('current transaction is aborted'))).toEqual({ marked: false, unsettled: 1, asked: 1 });
    // Outside a request nothing waits on the answer, so nothing is asked.
    expect(await check(true, 'scope')).toEqual({ marked: true, unsettled: 0, asked: 0 });
  });

  it('gives the outer level’s changes back when the savepoint holding the record() row rolls back', () => {
    const context = newAuditContext('request');
    const tx = runner();
    tx.begin();
    stageChange(tx.queryRunner, context, change('outer'), MAX);
    tx.begin();
    stageChange(tx.queryRunner, context, change('inner'), MAX);
    const hold = holdForRecord(tx.queryRunner, context);
    expect(hold.changes).toEqual({ entities: ['outer', 'inner'] });
    hold.written();
    tx.rollback();
    tx.commit();
    expect(context.recordedAtomically).toBe(false);
    expect(takeEntityChanges(context)).toEqual({ entities: ['outer'] });
  });

  it('gives the changes back where they were held when the record() insert fails', () => {
    const context = newAuditContext('request');
    const tx = runner();
    tx.begin();
    stageChange(tx.queryRunner, context, change('a'), MAX);
    holdForRecord(tx.queryRunner, context).failed();
    tx.commit();
    expect(context.recordedAtomically).toBe(false);
    expect(takeEntityChanges(context)).toEqual({ entities: ['a'] });
  });

  it('treats a COMMIT that PostgreSQL answered with ROLLBACK as a rollback, for changes and record() rows', () => {
    const context = newAuditContext('request');
    const tx = runner();
    tx.begin();
    stageChange(tx.queryRunner, context, change('lost'), MAX);
    holdForRecord(tx.queryRunner, context).written();
    stageChange(tx.queryRunner, context, change('lost too'), MAX);
    queryAnswered(tx.queryRunner, 'COMMIT', { command: 'ROLLBACK' });
    tx.commit();
    expect(context.recordedAtomically).toBe(false);
    expect(takeEntityChanges(context)).toBeUndefined();

    tx.begin();
    stageChange(tx.queryRunner, context, change('kept'), MAX);
    queryAnswered(tx.queryRunner, 'COMMIT', { command: 'COMMIT' });
    tx.commit();
    expect(takeEntityChanges(context)).toEqual({ entities: ['kept'] });

    // A COMMIT sent as SQL outside a transaction TypeORM reports says nothing of the next one.
    queryAnswered(tx.queryRunner, 'COMMIT', { command: 'ROLLBACK' });
    tx.begin();
    stageChange(tx.queryRunner, context, change('after'), MAX);
    queryAnswered(tx.queryRunner, 'COMMIT', { command: 'COMMIT' });
    tx.commit();
    expect(takeEntityChanges(context)).toEqual({ entities: ['after'] });
  });

  it('before the outer COMMIT, a record() row not found in its transaction, or a failed look-up, marks nothing', async () => {
    const at = (id: string) => ({ id, occurredAt: '2026-12-04T10:00:00.000Z', table: '"audit_log"' });
    const outcome = async (answer: (text: string) => unknown) => {
      const sent: string[] = [];
      const context = newAuditContext('request');
      const tx = runner();
      Object.assign(tx.queryRunner, {
        query: (text: string) => {
          sent.push(text.split(' ')[0]);
          return Promise.resolve().then(() => answer(text));
        },
      });
      tx.begin();
      holdForRecord(tx.queryRunner, context).written(at('r-1'));
      await confirmRecordedRows(tx.queryRunner, 1000);
      tx.commit();
      return { marked: context.recordedAtomically, sent };
    };
    const rows = (ids: string[]) => (text: string) => (text.startsWith('SELECT') ? ids.map((id) => ({ id })) : []);
    expect(await outcome(rows(['r-1']))).toEqual({ marked: true, sent: ['SAVEPOINT', 'SET', 'SELECT', 'ROLLBACK', 'RELEASE'] });
    expect((await outcome(rows([]))).marked).toBe(false);
    // The look-up failed: its savepoint is rolled back, so the caller's transaction goes on unharmed.
    const failing = await outcome((text) => {
      if (text.startsWith('SELECT')) throw new Error('permission denied');
      return [];
    });
    expect(failing).toEqual({ marked: false, sent: ['SAVEPOINT', 'SET', 'SELECT', 'ROLLBACK', 'RELEASE'] });
    // The transaction had failed already: nothing more is sent, and its COMMIT will be a ROLLBACK.
    const aborted = await outcome(() => {
      throw new Error('current transaction is aborted');
    });
    expect(aborted).toEqual({ marked: false, sent: ['SAVEPOINT'] });
  });
});
