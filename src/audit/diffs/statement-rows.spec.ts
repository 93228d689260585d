import { type EntityMetadata, type QueryRunner } from 'typeorm';
import { loadedRowUnwritten, statementAnswered, wroteNoRow } from './statement-rows';

describe('statement rows', () => {
  it('says a write by criteria wrote no row only when its own statement answered a count of 0', () => {
    const runner = {} as QueryRunner;
    expect(wroteNoRow(runner, 'update')).toBe(false);
    statementAnswered(runner, { command: 'UPDATE', rowCount: 0 });
    expect([
      wroteNoRow(runner, 'update'),
      wroteNoRow(runner, 'soft-remove'),
      wroteNoRow(runner, 'remove'),
      wroteNoRow(runner, 'insert'),
    ]).toEqual([true, true, false, false]);
    statementAnswered(runner, { command: 'DELETE', rowCount: 2 });
    expect(wroteNoRow(runner, 'remove')).toBe(false);
    // Several statements: the last one's answer.
    statementAnswered(runner, [
      { command: 'UPDATE', rowCount: 3 },
      { command: 'INSERT', rowCount: 0 },
    ]);
    expect([wroteNoRow(runner, 'insert'), wroteNoRow(runner, 'update')]).toEqual([true, false]);
    // Any other answer, or none known, forgets it: a change is never dropped on a guess.
    statementAnswered(runner, { command: 'SELECT', rowCount: 0 });
    expect(wroteNoRow(runner, 'insert')).toBe(false);
    statementAnswered(runner, { command: 'INSERT', rowCount: 0 });
    statementAnswered(runner, undefined);
    expect(wroteNoRow(runner, 'insert')).toBe(false);
    statementAnswered(runner, { command: 'UPDATE', rowCount: null });
    expect(wroteNoRow(runner, 'update')).toBe(false);
    expect(wroteNoRow({} as QueryRunner, 'update')).toBe(false);
  });

  const metadata = {
    tableName: 'contract',
    treeType: undefined,
    primaryColumns: [{ getEntityValue: (row: { id: number }) => row.id }],
  } as unknown as EntityMetadata;
  const update = (rows: number, id: number) => ({ command: 'UPDATE', rowCount: rows, id });
  const answer = (runner: QueryRunner, { command, rowCount, id }: ReturnType<typeof update>) =>
    statementAnswered(
      runner,
      { command, rowCount },
      command === 'UPDATE' ? 'UPDATE "contract" SET "title" = $1 WHERE "id" = $2' : 'DELETE FROM "contract" WHERE "id" IN ($1)',
      command === 'UPDATE' ? ['x', id] : [id],
    );

  it("takes each loaded row's update from its own statement, in order, and a remove from its table's DELETE", () => {
    const runner = {} as QueryRunner;
    statementAnswered(runner, { command: 'SELECT', rowCount: 2 }, 'SELECT * FROM contract');
    answer(runner, update(0, 1));
    answer(runner, update(1, 2));
    expect([loadedRowUnwritten(runner, 'update', metadata, { id: 1 }), loadedRowUnwritten(runner, 'update', metadata, { id: 2 })]).toEqual([
      true,
      false,
    ]);
    // None left: not known.
    expect(loadedRowUnwritten(runner, 'update', metadata, { id: 1 })).toBe(false);
    answer(runner, { command: 'DELETE', rowCount: 0, id: 3 });
    expect([loadedRowUnwritten(runner, 'remove', metadata, { id: 3 }), loadedRowUnwritten(runner, 'remove', metadata, { id: 4 })]).toEqual([
      true,
      false,
    ]);
    expect(loadedRowUnwritten(runner, 'insert', metadata, { id: 3 })).toBe(false);
  });

  it('says nothing when the statement does not name the row, when a DELETE of the table wrote a row, or after an answer that is no write', () => {
    const runner = {} as QueryRunner;
    answer(runner, update(0, 7));
    expect(loadedRowUnwritten(runner, 'update', metadata, { id: 8 })).toBe(false);
    answer(runner, { command: 'DELETE', rowCount: 0, id: 3 });
    answer(runner, { command: 'DELETE', rowCount: 1, id: 4 });
    expect(loadedRowUnwritten(runner, 'remove', metadata, { id: 3 })).toBe(false);
    answer(runner, update(0, 5));
    statementAnswered(runner, { command: 'SELECT', rowCount: 0 }, 'SELECT 1');
    expect(loadedRowUnwritten(runner, 'update', metadata, { id: 5 })).toBe(false);
    // A string of several statements: which answer is whose is not known.
    answer(runner, update(0, 5));
    statementAnswered(runner, { command: 'UPDATE', rowCount: 0 }, 'UPDATE contract SET a = 1; UPDATE contract SET a = 2', []);
    expect(loadedRowUnwritten(runner, 'update', metadata, { id: 5 })).toBe(false);
    // A tree entity writes more than one statement per row.
    statementAnswered(runner, { command: 'SELECT', rowCount: 0 }, 'SELECT 1');
    answer(runner, update(0, 5));
    expect(loadedRowUnwritten(runner, 'update', { ...metadata, treeType: 'nested-set' } as EntityMetadata, { id: 5 })).toBe(false);
  });
});
