import { readSql } from './sql-reader';

// Every query on a DataSource with audited entities is read, and a client can put its own text in
// one (a padded value sent as SQL text): reading must stay linear in the query's length.
const SIZE = 200_000;
const elapsedMs = (run: () => unknown): number => {
  const start = performance.now();
  run();
  return performance.now() - start;
};

describe('readSql reads a 200k-character query within 1 s', () => {
  it.each([
    ['blanks inside a constant', `SELECT length('${' '.repeat(SIZE)}x')`],
    ['blanks after a statement', `COMMIT AND CHAIN${' '.repeat(SIZE)};${' '.repeat(SIZE)}`],
    ['a long qualified name', `UPDATE ${'a'.repeat(SIZE)}.contract SET a = 1`],
    ['a long quoted name of doubled quotes', `DELETE FROM "${'""'.repeat(SIZE / 2)}"`],
    ['many dots', `UPDATE ${'a.'.repeat(SIZE / 2)}contract SET a = 1`],
    ['nested comment openings', `SELECT 1 ${'/*'.repeat(SIZE / 2)}`],
    ['line comments', `${'--\n'.repeat(SIZE / 3)}BEGIN`],
    ['dollar tags that never close', `SELECT ${'$a'.repeat(SIZE / 2)}`],
    ['a long dollar tag', `SELECT $${'t'.repeat(SIZE)}$ x`],
    ['dollar signs', `SELECT ${'$'.repeat(SIZE)}`],
    ['E strings of backslashes', `SELECT ${"E'\\\\' ".repeat(SIZE / 6)}`],
    ['doubled quotes', `SELECT '${"''".repeat(SIZE / 2)}`],
    ['many statements', 'SAVEPOINT a; '.repeat(SIZE / 13)],
    ['a WITH query of many parentheses', `WITH x AS (${'( '.repeat(SIZE / 2)}`],
    ['a WITH query of many writes', `WITH ${'a AS (DELETE FROM t), '.repeat(SIZE / 24)} SELECT 1`],
    ['truncate of many tables', `TRUNCATE ${'a, '.repeat(SIZE / 3)}b`],
  ])('%s', (_, sql) => {
    expect(elapsedMs(() => readSql(sql))).toBeLessThan(1000);
  });
});
