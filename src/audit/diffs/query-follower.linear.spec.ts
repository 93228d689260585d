import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { auditScope } from '../audit-context';
import { queryAnswered, queryFailed } from './query-follower';
import { unheardRolledBack, watchAuditedTables, writeHeard } from './unheard-writes';

// A client sets how many raw writes a request sends (an import file): the follower holds each
// write in constant time, whatever it holds already, and ends them (answered by an event, rolled
// back, committed) each once.
const dataSource = { options: {} } as DataSource;
const tag = { tableName: 'tag', schema: undefined } as unknown as EntityMetadata;
watchAuditedTables(dataSource, [{ tableName: 'contract', schema: undefined } as unknown as EntityMetadata, tag]);

/** A runner in a TypeORM transaction (`inTransaction`) or outside any block, as `pg` reports it. */
function runner(inTransaction: boolean): QueryRunner {
  return {
    connection: dataSource,
    isTransactionActive: inTransaction,
    transactionDepth: inTransaction ? 1 : 0,
    databaseConnection: { getTransactionStatus: () => (inTransaction ? 'T' : 'I') },
  } as unknown as QueryRunner;
}

const elapsedMs = (run: () => void): number => {
  const start = performance.now();
  auditScope(run);
  return performance.now() - start;
};

const WRITES = 20_000;
const WRITE = 'INSERT INTO contract VALUES (1);';

describe('the query follower notes 20 000 raw writes on an audited table within 1 s', () => {
  it('in one string of 640 kB sent outside a block', () => {
    const queryRunner = runner(false);
    expect(elapsedMs(() => queryAnswered(queryRunner, WRITE.repeat(WRITES), []))).toBeLessThan(1000);
  });

  it('in one string of 640 kB sent in a TypeORM transaction', () => {
    const queryRunner = runner(true);
    expect(elapsedMs(() => queryAnswered(queryRunner, WRITE.repeat(WRITES), []))).toBeLessThan(1000);
  });

  it('one query each, in a TypeORM transaction (an import loop)', () => {
    const queryRunner = runner(true);
    expect(
      elapsedMs(() => {
        for (let i = 0; i < WRITES; i += 1) queryAnswered(queryRunner, WRITE, { command: 'INSERT' });
      }),
    ).toBeLessThan(1000);
  });

  it('one TRUNCATE each outside a block, each counted at once', () => {
    const queryRunner = runner(false);
    expect(
      elapsedMs(() => {
        for (let i = 0; i < WRITES; i += 1) queryAnswered(queryRunner, 'TRUNCATE contract;', []);
      }),
    ).toBeLessThan(1000);
  });

  it('while entity events on another audited table follow, one each', () => {
    const queryRunner = runner(true);
    expect(
      elapsedMs(() => {
        queryAnswered(queryRunner, WRITE.repeat(WRITES), []);
        for (let i = 0; i < WRITES; i += 1) {
          queryAnswered(queryRunner, 'INSERT INTO tag VALUES (1)', { command: 'INSERT' });
          writeHeard(queryRunner, tag);
        }
      }),
    ).toBeLessThan(1000);
  });

  it('each rolled back to a savepoint sent as SQL, and TypeORM savepoints rolled back, while many are held', () => {
    const queryRunner = runner(true);
    expect(
      elapsedMs(() => {
        queryAnswered(queryRunner, WRITE.repeat(WRITES), []);
        for (let i = 0; i < WRITES / 2; i += 1) {
          queryAnswered(queryRunner, `SAVEPOINT s; ${WRITE} ROLLBACK TO s; RELEASE s`, []);
          unheardRolledBack(queryRunner, 1);
        }
      }),
    ).toBeLessThan(1000);
  });

  it('with savepoints sent as SQL: many set, then ended by names the follower never saw set', () => {
    const queryRunner = runner(true);
    expect(
      elapsedMs(() => {
        queryAnswered(queryRunner, 'SAVEPOINT a; '.repeat(WRITES), []);
        for (let i = 0; i < WRITES; i += 1) queryAnswered(queryRunner, 'RELEASE SAVEPOINT unseen', []);
      }),
    ).toBeLessThan(1000);
  });

  it('with savepoints sent as SQL: many set, then strings that fail after savepoint commands, each looking at what it ends', () => {
    const queryRunner = runner(true);
    expect(
      elapsedMs(() => {
        queryAnswered(queryRunner, 'SAVEPOINT a; '.repeat(WRITES), []);
        for (let i = 0; i < WRITES / 2; i += 1) {
          queryFailed(queryRunner, 'RELEASE SAVEPOINT unseen; SELECT 1/0');
          queryFailed(queryRunner, 'ROLLBACK TO SAVEPOINT a; SAVEPOINT b; SELECT 1/0');
        }
      }),
    ).toBeLessThan(1000);
  });

  it('with the owner changing on a runner that outlives its requests', () => {
    const queryRunner = runner(false);
    const start = performance.now();
    auditScope(() => queryAnswered(queryRunner, 'TRUNCATE contract;'.repeat(WRITES), []));
    for (let i = 0; i < WRITES; i += 1) auditScope(() => queryAnswered(queryRunner, 'TRUNCATE contract;', []));
    expect(performance.now() - start).toBeLessThan(1000);
  });
});
