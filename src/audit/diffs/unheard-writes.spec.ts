import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { auditScope, currentAuditContext, takeEntityChanges } from '../audit-context';
import { queryAnswered } from './query-follower';
import { unheardCommitted, unheardRolledBack, watchAuditedTables, writeHeard } from './unheard-writes';

describe('writes without an entity event', () => {
  const dataSource = {} as DataSource;
  const contract = { tableName: 'contract' } as EntityMetadata;
  const runner = (depth: number): QueryRunner =>
    ({ connection: dataSource, isTransactionActive: depth > 0, transactionDepth: depth }) as unknown as QueryRunner;
  watchAuditedTables(dataSource, [contract]);

  it('counts a write outside a transaction at once, and takes it back when its event follows', () => {
    auditScope(() => {
      const queryRunner = runner(0);
      queryAnswered(queryRunner, 'UPDATE "contract" SET "title" = $1', []);
      queryAnswered(queryRunner, 'UPDATE "tag" SET "name" = $1', []);
      expect(currentAuditContext()?.omitted).toBe(1);
      writeHeard(queryRunner, contract);
      expect(currentAuditContext()?.omitted).toBe(0);
    });
  });

  it('keeps a count made for an earlier request on a runner that outlives it', () => {
    const queryRunner = runner(0);
    const first = auditScope(() => {
      queryAnswered(queryRunner, 'TRUNCATE TABLE "contract"', []);
      return currentAuditContext();
    });
    auditScope(() => {
      queryAnswered(queryRunner, 'UPDATE "contract" SET "title" = $1', []);
      writeHeard(queryRunner, contract);
      expect(currentAuditContext()?.omitted).toBe(0);
    });
    expect(first?.omitted).toBe(1);
  });

  it('counts a write in a transaction on commit, never on rollback', () => {
    auditScope(() => {
      const committed = runner(1);
      queryAnswered(committed, 'DELETE FROM "contract"', []);
      expect(currentAuditContext()?.omitted).toBe(0);
      Object.assign(committed, { isTransactionActive: false, transactionDepth: 0 });
      unheardCommitted(committed);
      expect(currentAuditContext()?.omitted).toBe(1);

      const rolledBack = runner(1);
      queryAnswered(rolledBack, 'DELETE FROM "contract"', []);
      Object.assign(rolledBack, { isTransactionActive: false, transactionDepth: 0 });
      unheardRolledBack(rolledBack);
      unheardCommitted(rolledBack);
      expect(currentAuditContext()?.omitted).toBe(1);
    });
  });

  it('drops what a transaction held when PostgreSQL answered its COMMIT with ROLLBACK', () => {
    auditScope(() => {
      const queryRunner = runner(1);
      queryAnswered(queryRunner, 'INSERT INTO "contract"("id") VALUES ($1)', []);
      queryAnswered(queryRunner, 'COMMIT', { command: 'ROLLBACK' });
      Object.assign(queryRunner, { isTransactionActive: false, transactionDepth: 0 });
      unheardCommitted(queryRunner);
      expect(currentAuditContext()?.omitted).toBe(0);
    });
  });

  it("counts a write in a nested scope on the outer scope's row, the scope it belongs to", () => {
    auditScope(() => {
      const outer = currentAuditContext();
      auditScope(() => queryAnswered(runner(0), 'UPDATE "contract" SET "title" = $1', []));
      expect(outer?.omitted).toBe(1);
    });
  });

  it('holds a write in a block opened as SQL until pg says it ended: counted on COMMIT, dropped on ROLLBACK', () => {
    auditScope(() => {
      let status = 'T';
      const inBlock = (): QueryRunner =>
        Object.assign(runner(0), { databaseConnection: { getTransactionStatus: () => status } }) as unknown as QueryRunner;
      const committed = inBlock();
      queryAnswered(committed, 'UPDATE "contract" SET "title" = $1; UPDATE contract SET title = $1', []);
      expect(currentAuditContext()?.omitted).toBe(0);
      status = 'I';
      queryAnswered(committed, 'COMMIT', { command: 'COMMIT' });
      expect(currentAuditContext()?.omitted).toBe(2);

      status = 'T';
      const rolledBack = inBlock();
      queryAnswered(rolledBack, 'DELETE FROM contract', []);
      status = 'I';
      queryAnswered(rolledBack, 'ROLLBACK', { command: 'ROLLBACK' });
      expect(currentAuditContext()?.omitted).toBe(2);
    });
  });

  it('counts a write whose block ended unseen (through the driver) when the changes are taken, and not while it is open', () => {
    auditScope(() => {
      let status = 'T';
      const queryRunner = Object.assign(runner(0), {
        databaseConnection: { getTransactionStatus: () => status },
      }) as unknown as QueryRunner;
      queryAnswered(queryRunner, 'TRUNCATE contract', []);
      expect(takeEntityChanges(currentAuditContext())).toBeUndefined();
      status = 'I';
      expect(takeEntityChanges(currentAuditContext())?.entitiesOmitted).toBe(1);
    });
  });
});
