import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { auditScope, currentAuditContext, takeEntityChanges } from '../audit-context';
import { writtenTables } from './sql-writes';
import { unheardCommitted, unheardRolledBack, watchAuditedTables, writeHeard, writeSeen, writtenTable } from './unheard-writes';

describe('writtenTable', () => {
  it.each([
    ['INSERT INTO "contract"("id", "title") VALUES ($1, $2)', 'contract'],
    ['UPDATE "public"."contract" SET "title" = $1', 'contract'],
    ['DELETE FROM "contract" WHERE "id" = $1', 'contract'],
    ['TRUNCATE TABLE "contract"', 'contract'],
    ['  update ONLY Contract set title = $1', 'contract'],
    ['delete from only public.contract', 'contract'],
    ['INSERT INTO "Odd ""Name"""("id") VALUES (1)', 'Odd "Name"'],
    ["/* controller='contracts' */ UPDATE contract SET title = $1", 'contract'],
    ['/* outer /* nested */ still */\n-- a note\n  DELETE FROM contract', 'contract'],
    ["SET LOCAL lock_timeout = '1s'; UPDATE contract SET title = 'x'", 'contract'],
    ['MERGE INTO public.contract AS c USING s ON true WHEN MATCHED THEN DELETE', 'contract'],
  ])('names the table of %s', (query, table) => {
    expect(writtenTable(query)).toBe(table);
  });

  it.each([
    'SELECT * FROM "contract"',
    'WITH x AS (SELECT 1) UPDATE contract SET title = 1',
    'COMMIT',
    'SAVEPOINT typeorm_1',
    "SELECT 'a; UPDATE contract SET title = 1'",
    'SELECT $$ ; DELETE FROM contract $$',
    'SELECT 1 /* ; TRUNCATE contract */',
    'SELECT 1 -- ; TRUNCATE contract',
  ])('names none for %s', (query) => {
    expect(writtenTable(query)).toBeUndefined();
  });
});

describe('writtenTables', () => {
  it('names one table per write statement of a multi-statement string, in order', () => {
    expect(writtenTables('UPDATE contract SET a = 1; SELECT \';\'; DELETE FROM "Tag"; INSERT INTO contract VALUES (1)')).toEqual([
      'contract',
      'Tag',
      'contract',
    ]);
  });

  it('reads a long qualified name in one pass (a pattern that backtracked took seconds for 20,000 characters)', () => {
    expect(writtenTables(`UPDATE ${'a'.repeat(200_000)}.contract SET a = 1`)).toEqual(['contract']);
    expect(writtenTables(`DELETE FROM "${'q'.repeat(200_000)}"."Tag"`)).toEqual(['Tag']);
  }, 5_000);
});

describe('writes without an entity event', () => {
  const dataSource = {} as DataSource;
  const contract = { tableName: 'contract' } as EntityMetadata;
  const runner = (depth: number): QueryRunner =>
    ({ connection: dataSource, isTransactionActive: depth > 0, transactionDepth: depth }) as unknown as QueryRunner;
  watchAuditedTables(dataSource, [contract]);

  it('counts a write outside a transaction at once, and takes it back when its event follows', () => {
    auditScope(() => {
      const queryRunner = runner(0);
      writeSeen(queryRunner, 'UPDATE "contract" SET "title" = $1', []);
      writeSeen(queryRunner, 'UPDATE "tag" SET "name" = $1', []);
      expect(currentAuditContext()?.omitted).toBe(1);
      writeHeard(queryRunner, contract);
      expect(currentAuditContext()?.omitted).toBe(0);
    });
  });

  it('keeps a count made for an earlier request on a runner that outlives it', () => {
    const queryRunner = runner(0);
    const first = auditScope(() => {
      writeSeen(queryRunner, 'TRUNCATE TABLE "contract"', []);
      return currentAuditContext();
    });
    auditScope(() => {
      writeSeen(queryRunner, 'UPDATE "contract" SET "title" = $1', []);
      writeHeard(queryRunner, contract);
      expect(currentAuditContext()?.omitted).toBe(0);
    });
    expect(first?.omitted).toBe(1);
  });

  it('counts a write in a transaction on commit, never on rollback', () => {
    auditScope(() => {
      const committed = runner(1);
      writeSeen(committed, 'DELETE FROM "contract"', []);
      expect(currentAuditContext()?.omitted).toBe(0);
      Object.assign(committed, { isTransactionActive: false, transactionDepth: 0 });
      unheardCommitted(committed);
      expect(currentAuditContext()?.omitted).toBe(1);

      const rolledBack = runner(1);
      writeSeen(rolledBack, 'DELETE FROM "contract"', []);
      Object.assign(rolledBack, { isTransactionActive: false, transactionDepth: 0 });
      unheardRolledBack(rolledBack);
      unheardCommitted(rolledBack);
      expect(currentAuditContext()?.omitted).toBe(1);
    });
  });

  it('drops what a transaction held when PostgreSQL answered its COMMIT with ROLLBACK', () => {
    auditScope(() => {
      const queryRunner = runner(1);
      writeSeen(queryRunner, 'INSERT INTO "contract"("id") VALUES ($1)', []);
      writeSeen(queryRunner, 'COMMIT', { command: 'ROLLBACK' });
      Object.assign(queryRunner, { isTransactionActive: false, transactionDepth: 0 });
      unheardCommitted(queryRunner);
      expect(currentAuditContext()?.omitted).toBe(0);
    });
  });

  it("counts a write in a nested scope on the outer scope's row, the scope it belongs to", () => {
    auditScope(() => {
      const outer = currentAuditContext();
      auditScope(() => writeSeen(runner(0), 'UPDATE "contract" SET "title" = $1', []));
      expect(outer?.omitted).toBe(1);
    });
  });

  it('holds a write in a block opened as SQL until pg says it ended: counted on COMMIT, dropped on ROLLBACK', () => {
    auditScope(() => {
      let status = 'T';
      const inBlock = (): QueryRunner =>
        Object.assign(runner(0), { databaseConnection: { getTransactionStatus: () => status } }) as unknown as QueryRunner;
      const committed = inBlock();
      writeSeen(committed, 'UPDATE "contract" SET "title" = $1; UPDATE contract SET title = $1', []);
      expect(currentAuditContext()?.omitted).toBe(0);
      status = 'I';
      writeSeen(committed, 'COMMIT', { command: 'COMMIT' });
      expect(currentAuditContext()?.omitted).toBe(2);

      status = 'T';
      const rolledBack = inBlock();
      writeSeen(rolledBack, 'DELETE FROM contract', []);
      status = 'I';
      writeSeen(rolledBack, 'ROLLBACK', { command: 'ROLLBACK' });
      expect(currentAuditContext()?.omitted).toBe(2);
    });
  });

  it('counts a write whose block ended unseen (through the driver) when the changes are taken, and not while it is open', () => {
    auditScope(() => {
      let status = 'T';
      const queryRunner = Object.assign(runner(0), {
        databaseConnection: { getTransactionStatus: () => status },
      }) as unknown as QueryRunner;
      writeSeen(queryRunner, 'TRUNCATE contract', []);
      expect(takeEntityChanges(currentAuditContext())).toBeUndefined();
      status = 'I';
      expect(takeEntityChanges(currentAuditContext())?.entitiesOmitted).toBe(1);
    });
  });
});
