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
    ['a string continued on many lines', `SELECT E'a'${"\n'\\''".repeat(SIZE / 5)}`],
    ['strings each followed by lines of blanks and no quote', `SELECT ${"'a'\n  \n-- c\n, ".repeat(SIZE / 15)}1`],
    ['a string followed by a long line of blanks', `SELECT 'a'${' '.repeat(SIZE)}\nx`],
    ['many statements', 'SAVEPOINT a; '.repeat(SIZE / 13)],
    ['a WITH query of many parentheses', `WITH x AS (${'( '.repeat(SIZE / 2)}`],
    ['a WITH query of many writes', `WITH ${'a AS (DELETE FROM t), '.repeat(SIZE / 24)} SELECT 1`],
    ['truncate of many tables', `TRUNCATE ${'a, '.repeat(SIZE / 3)}b`],
    ['line comments ended by carriage returns', `${'--\r'.repeat(SIZE / 3)}BEGIN`],
    ['a WITH query of many clauses outside parentheses', `WITH x AS (SELECT 1) ${'SEARCH DEPTH FIRST BY n SET o '.repeat(SIZE / 31)}`],
    ['a long U&"" name of escapes', `UPDATE U&"${'\\0063'.repeat(SIZE / 5)}" SET a = 1`],
    ['PREPARE inside PREPARE', `${'PREPARE a AS '.repeat(SIZE / 13)}DELETE FROM contract`],
    ['a PREPARE of many parentheses', `PREPARE a ${'('.repeat(SIZE)}`],
    ['U&"" names each followed by blanks', `SELECT ${'U&"a"    '.repeat(SIZE / 9)}`],
    ['a routine body of many CASE openings', `CREATE FUNCTION f() BEGIN ATOMIC ${'SELECT CASE; '.repeat(SIZE / 13)}`],
    ['a routine body of many END words', `CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC ${'END; '.repeat(SIZE / 5)}`],
    ['many BEGIN ATOMIC outside a routine', `SELECT ${'begin atomic; '.repeat(SIZE / 14)}`],
    ['a rule action list of many statements', `CREATE RULE r AS ON INSERT TO t DO (${'UPDATE a SET b = 1; '.repeat(SIZE / 20)}`],
    ['many capitals outside ASCII', `SAVEPOINT ${'ÉÅ'.repeat(SIZE / 2)}`],
    ['a long name outside ASCII', `SAVEPOINT ${'é'.repeat(SIZE)}`],
    ['a long quoted name of characters of 4 bytes', `SAVEPOINT "${'𝄞'.repeat(SIZE / 2)}"`],
    ['many names longer than 63 bytes', `SELECT ${`${'x'.repeat(70)}é, `.repeat(SIZE / 74)}1`],
    ['a WITH query of many labels named like verbs', `WITH x AS (SELECT 1) SELECT ${'1 AS delete, t.update, '.repeat(SIZE / 23)}1`],
    [
      'a WITH query of many parts with clauses',
      `WITH ${'a(n) AS (SELECT 1) CYCLE n SET d USING p, '.repeat(SIZE / 43)}b AS (SELECT 1) SELECT 1`,
    ],
    ['a routine body of many columns labelled end', `CREATE FUNCTION f() BEGIN ATOMIC ${'SELECT 1 AS end, t.end; '.repeat(SIZE / 24)}END`],
  ])('%s', (_, sql) => {
    expect(elapsedMs(() => readSql(sql))).toBeLessThan(1000);
  });
});
