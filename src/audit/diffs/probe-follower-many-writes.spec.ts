import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { auditScope } from '../audit-context';
import { queryAnswered } from './query-follower';
import { watchAuditedTables } from './unheard-writes';

// docs/GUIDE.md ("Diffs"): "Each query string is read once, statement by statement, in order [...]
// in time linear in its length", and CHANGELOG: inputs a client controls are read in one pass.
// The reader is linear, but each write the follower notes filters every write held before it.
const dataSource = { options: {} } as DataSource;
watchAuditedTables(dataSource, [{ tableName: 'contract', schema: undefined } as unknown as EntityMetadata]);

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

describe('probe: the query follower notes 20 000 raw writes on an audited table within 1 s', () => {
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
});
