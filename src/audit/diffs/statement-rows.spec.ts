import { type QueryRunner } from 'typeorm';
import { statementAnswered, wroteNoRow } from './statement-rows';

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
});
