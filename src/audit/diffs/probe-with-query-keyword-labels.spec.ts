// Promise (docs/GUIDE.md, diffs): raw SQL writes on an audited entity's table count 1 each in
// `changes.entitiesOmitted`, "in a `WITH` query too (its main statement … and its data-modifying
// parts)"; "the count is a floor" (a statement that writes nothing is not counted as a write).
// Break: PostgreSQL takes `insert`, `update`, `delete` and `merge` as plain names where a column
// or a label goes (`SELECT count(*) AS delete FROM contract`, a column named `delete` of a
// permissions table: `SELECT p.delete FROM contract p`). In a `WITH` query the reader takes such
// a name, outside parentheses or right after `)`, as a write verb: a read of an audited table is
// counted as a raw write on it.
// Observed: readSql() answers { kind: 'write', tables: [contract] } for these reads, so a request
// that only reads the table gets entitiesOmitted 1 once its transaction commits.
// Severity: low (an overcount of entitiesOmitted; needs a WITH query and such a name).
// Fix guess: in writesInWith(), take a verb outside parentheses only where the main statement can
// start (right after the closing `)` of a WITH item, or after its SEARCH / CYCLE clause), not
// after AS, a dot or a comma.
import { readSql } from './sql-reader';

describe('readSql on WITH queries that read a column or label named like a write verb', () => {
  it.each([
    'WITH recent AS (SELECT 1) SELECT count(*) AS delete FROM contract',
    'WITH recent AS (SELECT 1) SELECT p.id, p.delete FROM contract p',
  ])('reads %s as no write', (sql) => {
    expect(readSql(sql)).toEqual([{ kind: 'other' }]);
  });
});
