import { type EntityMetadata, type ObjectLiteral, type QueryRunner } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { type RelationMetadata } from 'typeorm/metadata/RelationMetadata';
import { auditScope } from '../audit-context';
import { ownersBeforeUpdate, ownersForgotten, sentWrite, unloadedOwners, watchOwners, writtenOwners } from './written-owners';

describe('owners written through the owner’s list', () => {
  const id = { databaseName: 'id', propertyPath: 'id', getEntityValue: (entity: ObjectLiteral) => entity.id as unknown } as ColumnMetadata;
  const clientId = { databaseName: 'clientId', isVirtual: true, default: undefined, referencedColumn: id } as unknown as ColumnMetadata;
  const client = {
    propertyPath: 'client',
    inverseRelation: {},
    joinColumns: [clientId],
    getEntityValue: (entity: ObjectLiteral) => entity.client as unknown,
  } as unknown as RelationMetadata;
  const metadata = { tablePath: 'contract', primaryColumns: [id], relationsWithJoinColumns: [client] } as unknown as EntityMetadata;
  watchOwners([metadata]);

  /** A runner in a transaction whose queries are noted and answered by `answer`. */
  function runner(answer: (sql: string, parameters: unknown) => unknown = () => []): { queryRunner: QueryRunner; sent: string[] } {
    const sent: string[] = [];
    const queryRunner = {
      isTransactionActive: true,
      query: (sql: string, parameters: unknown) => {
        sent.push(parameters === undefined ? sql : `${sql} ${JSON.stringify(parameters)}`);
        return Promise.resolve().then(() => answer(sql, parameters));
      },
    } as unknown as QueryRunner;
    return { queryRunner, sent };
  }

  it("reads an inserted row's owner from its INSERT, by the key PostgreSQL returned; one it cannot read is counted", () => {
    auditScope(() => {
      const { queryRunner } = runner();
      sentWrite(queryRunner, 'INSERT INTO "contract"("title", "clientId") VALUES ($1, $2), ($3, now()) RETURNING "id"', ['A', 7, 'B'], {
        rows: [{ id: 1 }, { id: 2 }],
      });
      expect(writtenOwners(queryRunner, 'insert', { metadata, entity: { id: 1 }, entityId: 1 })).toEqual({
        written: new Map([[client, 7]]),
        before: new Map(),
        unseen: 0,
      });
      // Set by an expression, or in no INSERT kept: not known, counted.
      expect(writtenOwners(queryRunner, 'insert', { metadata, entity: { id: 2 }, entityId: 2 })?.unseen).toBe(1);
      expect(writtenOwners(queryRunner, 'insert', { metadata, entity: { id: 3 }, entityId: 3 })?.unseen).toBe(1);
      // Held by the entity: the diff reads it there.
      expect(writtenOwners(queryRunner, 'insert', { metadata, entity: { id: 1, client: { id: 7 } }, entityId: 1 })).toBeUndefined();
      // Left out of the INSERT, with no default of its own: none.
      sentWrite(queryRunner, 'INSERT INTO "contract"("title") VALUES ($1) RETURNING "id"', ['C'], { rows: [{ id: 4 }] });
      expect(writtenOwners(queryRunner, 'insert', { metadata, entity: { id: 4 }, entityId: 4 })?.written).toEqual(
        new Map([[client, null]]),
      );
    });
  });

  it('reads the old owner before an UPDATE that sets it, in a savepoint, only for a row whose owner TypeORM did not load', async () => {
    await auditScope(async () => {
      const { queryRunner, sent } = runner((sql) => (sql.startsWith('SELECT') ? [{ id: 5, clientId: 3 }] : []));
      unloadedOwners({ metadata, entity: { id: 5 }, databaseEntity: { id: 5 }, updatedRelations: [] });
      unloadedOwners({ metadata, entity: { id: 6 }, databaseEntity: { id: 6, client: { id: 3 } }, updatedRelations: [] });
      const update = 'UPDATE "contract" SET "clientId" = $1 WHERE "id" IN ($2)';
      // A row TypeORM loaded with its owner, and an UPDATE that sets no owner, are not read.
      expect(ownersBeforeUpdate(queryRunner, update, [4, 6])).toBeUndefined();
      expect(ownersBeforeUpdate(queryRunner, 'UPDATE "contract" SET "title" = $1 WHERE "id" IN ($2)', ['X', 5])).toBeUndefined();
      await ownersBeforeUpdate(queryRunner, update, [4, 5]);
      expect(sent).toEqual([
        'SAVEPOINT audit_owner_before',
        'SELECT "id", "clientId" FROM "contract" WHERE "id" IN ($1) [5]',
        'RELEASE SAVEPOINT audit_owner_before',
      ]);
      sentWrite(queryRunner, update, [4, 5], { rows: [] });
      expect(
        writtenOwners(queryRunner, 'update', { metadata, entity: { id: 5 }, databaseEntity: { id: 5 }, updatedRelations: [] }),
      ).toEqual({
        written: new Map([[client, 4]]),
        before: new Map([[client, 3]]),
        unseen: 0,
      });
      // Found changed by TypeORM itself: the diff has it from the entity.
      expect(
        writtenOwners(queryRunner, 'update', { metadata, entity: { id: 5 }, databaseEntity: { id: 5 }, updatedRelations: [client] }),
      ).toBeUndefined();
      ownersForgotten(queryRunner);
      expect(
        writtenOwners(queryRunner, 'update', { metadata, entity: { id: 5 }, databaseEntity: { id: 5 }, updatedRelations: [] }),
      ).toBeUndefined();
    });
  });

  it('leaves the transaction as it was when the read fails: the old owner is then not known', async () => {
    await auditScope(async () => {
      const { queryRunner, sent } = runner((sql) => {
        if (sql.startsWith('SELECT')) throw new Error('permission denied for column clientId');
        return [];
      });
      unloadedOwners({ metadata, entity: { id: 5 }, databaseEntity: { id: 5 }, updatedRelations: [] });
      const update = 'UPDATE "contract" SET "clientId" = $1 WHERE "id" IN ($2)';
      await ownersBeforeUpdate(queryRunner, update, [4, 5]);
      expect(sent.filter((sql) => !sql.startsWith('SELECT'))).toEqual([
        'SAVEPOINT audit_owner_before',
        'ROLLBACK TO SAVEPOINT audit_owner_before',
        'RELEASE SAVEPOINT audit_owner_before',
      ]);
      sentWrite(queryRunner, update, [4, 5], { rows: [] });
      expect(
        writtenOwners(queryRunner, 'update', { metadata, entity: { id: 5 }, databaseEntity: { id: 5 }, updatedRelations: [] }),
      ).toEqual({
        written: new Map([[client, 4]]),
        before: new Map(),
        unseen: 0,
      });
    });
  });

  it('keeps nothing outside an audit context', () => {
    const { queryRunner } = runner();
    sentWrite(queryRunner, 'INSERT INTO "contract"("title", "clientId") VALUES ($1, $2) RETURNING "id"', ['A', 7], { rows: [{ id: 1 }] });
    auditScope(() => {
      expect(writtenOwners(queryRunner, 'insert', { metadata, entity: { id: 1 }, entityId: 1 })?.unseen).toBe(1);
    });
  });
});
