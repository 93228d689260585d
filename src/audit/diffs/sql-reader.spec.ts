import fc from 'fast-check';
import { readSql, type SqlStatement, type TableName } from './sql-reader';

const write = (...tables: [string | undefined, string][]) => ({
  kind: 'write',
  tables: tables.map(([schema, name]) => ({ schema, name })),
});

describe('readSql', () => {
  it.each([
    ['BEGIN', { kind: 'begin' }],
    ['begin work isolation level serializable', { kind: 'begin' }],
    ['START TRANSACTION READ WRITE', { kind: 'begin' }],
    ['COMMIT', { kind: 'commit', chain: false }],
    ['end transaction', { kind: 'commit', chain: false }],
    ['COMMIT WORK AND CHAIN', { kind: 'commit', chain: true }],
    ['commit and no chain', { kind: 'commit', chain: false }],
    ['ROLLBACK', { kind: 'rollback', chain: false }],
    ['abort', { kind: 'rollback', chain: false }],
    ['ROLLBACK TRANSACTION AND CHAIN', { kind: 'rollback', chain: true }],
    ['SAVEPOINT S1', { kind: 'savepoint', name: 's1' }],
    ['savepoint "My ""Point"""', { kind: 'savepoint', name: 'My "Point"' }],
    ['ROLLBACK TO s1', { kind: 'rollback-to', name: 's1' }],
    ['rollback work to savepoint "S1"', { kind: 'rollback-to', name: 'S1' }],
    ['RELEASE s1', { kind: 'release', name: 's1' }],
    ['release savepoint S1', { kind: 'release', name: 's1' }],
    // SAVEPOINT is optional there: alone, the word is the savepoint's name.
    ['ROLLBACK TO savepoint', { kind: 'rollback-to', name: 'savepoint' }],
    ['RELEASE savepoint', { kind: 'release', name: 'savepoint' }],
    ['ROLLBACK TO SAVEPOINT savepoint', { kind: 'rollback-to', name: 'savepoint' }],
    ['release savepoint "savepoint"', { kind: 'release', name: 'savepoint' }],
    ["COMMIT PREPARED 'x'", { kind: 'other' }],
    ["ROLLBACK PREPARED 'x'", { kind: 'other' }],
    ['START', { kind: 'other' }],
    ['SELECT * FROM contract FOR UPDATE', { kind: 'other' }],
    ["SET LOCAL lock_timeout = '1s'", { kind: 'other' }],
  ])('reads %s', (sql, statement) => {
    expect(readSql(sql)).toEqual([statement]);
  });

  it.each([
    ['INSERT INTO "contract"("id", "title") VALUES ($1, $2)', write([undefined, 'contract'])],
    ['UPDATE "public"."contract" SET "title" = $1', write(['public', 'contract'])],
    ['DELETE FROM "contract" WHERE "id" = $1', write([undefined, 'contract'])],
    ['  update ONLY Contract set title = $1', write([undefined, 'contract'])],
    ['delete from only Archive.contract', write(['archive', 'contract'])],
    ['TRUNCATE TABLE a, ONLY b.c, "D"', write([undefined, 'a'], ['b', 'c'], [undefined, 'D'])],
    ['MERGE INTO mydb.public.contract AS c USING s ON true WHEN MATCHED THEN DELETE', write(['public', 'contract'])],
    ['INSERT INTO "Odd ""Name"""("id") VALUES (1)', write([undefined, 'Odd "Name"'])],
    ['UPDATE /* x */ contract SET a = 1', write([undefined, 'contract'])],
    ['DELETE -- why\n FROM /* a /* nested */ b */ public . contract', write(['public', 'contract'])],
    ['WITH x AS (SELECT 1) UPDATE contract SET title = 1', write([undefined, 'contract'])],
    [
      'WITH RECURSIVE d AS MATERIALIZED (DELETE FROM contract RETURNING *) INSERT INTO archive.contract SELECT * FROM d',
      write([undefined, 'contract'], ['archive', 'contract']),
    ],
    ['WITH x AS (SELECT 1 FROM contract FOR UPDATE) SELECT * FROM x', { kind: 'other' }],
    ['INSERT INTO contract VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2', write([undefined, 'contract'])],
    [
      'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SEARCH DEPTH FIRST BY n SET ord UPDATE contract SET a = 1',
      write([undefined, 'contract']),
    ],
    [
      'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) CYCLE n SET looped USING path DELETE FROM contract',
      write([undefined, 'contract']),
    ],
    ['WITH x AS (SELECT 1) SELECT * FROM contract FOR NO KEY UPDATE OF contract', { kind: 'other' }],
    ['WITH x AS (SELECT 1) INSERT INTO a VALUES (1) ON CONFLICT (id) DO UPDATE SET b = 2', write([undefined, 'a'])],
    ['UPDATE U&"\\0063ontract" SET a = 1', write([undefined, 'contract'])],
    ['update u&"c\\+00006Fntract" set a = 1', write([undefined, 'contract'])],
    ['UPDATE U&"!0063ontract" UESCAPE \'!\' SET a = 1', write([undefined, 'contract'])],
    ['UPDATE public.U&"\\\\x" SET a = 1', write(['public', '\\x'])],
  ])('reads the write %s', (sql, statement) => {
    expect(readSql(sql)).toEqual([statement]);
  });

  it.each([
    ["COPY contract FROM '/tmp/c.csv'", write([undefined, 'contract'])],
    ['copy binary archive.contract (id, "Title") from stdin', write(['archive', 'contract'])],
    ["COPY contract (title, counterparty) FROM PROGRAM 'cat c.csv' WITH (FORMAT csv)", write([undefined, 'contract'])],
    ['COPY contract TO STDOUT', { kind: 'other' }],
    ['COPY contract (id) TO STDOUT', { kind: 'other' }],
    ['COPY (SELECT * FROM contract) TO STDOUT', { kind: 'other' }],
    ["COPY (DELETE FROM contract WHERE title = 'x' RETURNING id) TO STDOUT", write([undefined, 'contract'])],
    ['copy (update public.contract set title = 1 returning id) to stdout', write(['public', 'contract'])],
    ['COPY (WITH d AS (DELETE FROM contract RETURNING id) SELECT * FROM d) TO STDOUT', write([undefined, 'contract'])],
    ['COPY (COPY (DELETE FROM contract) TO STDOUT) TO STDOUT', { kind: 'other' }],
  ])('reads COPY: %s', (sql, statement) => {
    expect(readSql(sql)).toEqual([statement]);
    // The same with a statement after it.
    expect(readSql(`${sql}; UPDATE b SET a = 1`)).toEqual([statement, write([undefined, 'b'])]);
  });

  it('splits a string into its statements, in order, leaving out empty ones', () => {
    expect(readSql('BEGIN; UPDATE contract SET a = 1;; SAVEPOINT a ; ROLLBACK TO a; COMMIT AND CHAIN; ROLLBACK;')).toEqual([
      { kind: 'begin' },
      write([undefined, 'contract']),
      { kind: 'savepoint', name: 'a' },
      { kind: 'rollback-to', name: 'a' },
      { kind: 'commit', chain: true },
      { kind: 'rollback', chain: false },
    ]);
    expect(readSql('  -- nothing\n /* at all */ ; ')).toEqual([]);
  });

  it.each([
    "SELECT 'a; UPDATE contract SET title = 1'",
    "SELECT 'it''s; COMMIT'",
    "SELECT E'\\'; ROLLBACK'",
    "SELECT e'\\\\'",
    'SELECT $$ ; DELETE FROM contract $$',
    'SELECT $body$ $$; ROLLBACK $body$',
    'SELECT 1 /* ; TRUNCATE contract */',
    'SELECT 1 /* /* ; */ TRUNCATE contract */',
    'SELECT 1 -- ; TRUNCATE contract',
    'SELECT "a;ROLLBACK" FROM t',
    'SELECT a$b$ FROM t',
  ])('reads no statement boundary inside quotes, dollar quotes or comments: %s', (sql) => {
    expect(readSql(sql)).toEqual([{ kind: 'other' }]);
  });

  it("ends a standard string at its quote whatever backslash comes before it, and an E'' string only past its escapes", () => {
    expect(readSql("SELECT '\\'; ROLLBACK")).toEqual([{ kind: 'other' }, { kind: 'rollback', chain: false }]);
    expect(readSql("SELECT E'\\''; ROLLBACK")).toEqual([{ kind: 'other' }, { kind: 'rollback', chain: false }]);
    expect(readSql('SELECT $1; ROLLBACK')).toEqual([{ kind: 'other' }, { kind: 'rollback', chain: false }]);
  });

  it.each([
    ["SELECT E'x'\n'\\'; ROLLBACK; --'", [{ kind: 'other' }]],
    ["SELECT E'x'\r'\\'; ROLLBACK; --'", [{ kind: 'other' }]],
    ["SELECT E'x' -- note\n'\\'; ROLLBACK; --'", [{ kind: 'other' }]],
    ["SELECT E'x'\n-- note\r\n  '\\'; ROLLBACK; --'", [{ kind: 'other' }]],
    ["SELECT E'x'\n'y'\n\t\f\v'\\'; ROLLBACK; --'", [{ kind: 'other' }]],
    ["SELECT E'x'\n'y\\'' ; ROLLBACK ; SELECT 'z'", [{ kind: 'other' }, { kind: 'rollback', chain: false }, { kind: 'other' }]],
    ["SELECT 'x'\n'\\'; ROLLBACK", [{ kind: 'other' }, { kind: 'rollback', chain: false }]],
    ["SELECT E'x' '\\'; ROLLBACK", [{ kind: 'other' }, { kind: 'rollback', chain: false }]],
    ["SELECT E'x' /* note */\n'\\'; ROLLBACK", [{ kind: 'other' }, { kind: 'rollback', chain: false }]],
    ["SELECT E'x'\n/* note */ '\\'; ROLLBACK", [{ kind: 'other' }, { kind: 'rollback', chain: false }]],
  ])('reads a string continued past a line break as PostgreSQL does, in the mode of its first part: %j', (sql, statements) => {
    expect(readSql(sql)).toEqual(statements);
  });

  it.each([
    [
      'PREPARE up (text, int) AS UPDATE contract SET a = $1',
      { kind: 'prepare', name: 'up', tables: [{ schema: undefined, name: 'contract' }] },
    ],
    ['prepare "Look" as select 1', { kind: 'prepare', name: 'Look', tables: [] }],
    ['PREPARE a AS PREPARE b AS DELETE FROM contract', { kind: 'prepare', name: 'a', tables: [] }],
    ["PREPARE TRANSACTION 'x'", { kind: 'other' }],
    ["EXECUTE up('a', 1)", { kind: 'execute', name: 'up' }],
    ['DEALLOCATE PREPARE up', { kind: 'deallocate', name: 'up' }],
    ['deallocate all', { kind: 'deallocate', name: undefined }],
    ['DISCARD ALL', { kind: 'deallocate', name: undefined }],
    ['DISCARD PLANS', { kind: 'other' }],
  ])('reads the prepared statement %s', (sql, statement) => {
    expect(readSql(sql)).toEqual([statement]);
  });

  it('ends a -- comment at a carriage return as at a line feed', () => {
    expect(readSql('-- tag\rUPDATE contract SET a = 1')).toEqual([write([undefined, 'contract'])]);
    expect(readSql('UPDATE contract SET a = 1; -- undo\rROLLBACK')).toEqual([
      write([undefined, 'contract']),
      { kind: 'rollback', chain: false },
    ]);
  });

  it('reads a statement padded with long runs of blanks as the statement it is', () => {
    const blanks = ' '.repeat(50_000);
    expect(readSql(`SAVEPOINT s1${blanks};${blanks}`)).toEqual([{ kind: 'savepoint', name: 's1' }]);
    expect(readSql(`commit and chain${blanks};`)).toEqual([{ kind: 'commit', chain: true }]);
    expect(readSql(`SELECT length('${blanks}x')`)).toEqual([{ kind: 'other' }]);
  });

  it.each([
    ['CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; ROLLBACK'],
    ['create or replace procedure p() begin atomic update contract set a = 1; delete from contract; end; ROLLBACK'],
    ['CREATE FUNCTION f(x int) RETURNS int BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE CASE x WHEN 0 THEN 0 END END; END; ROLLBACK'],
    ['CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT (CASE WHEN true THEN 1 END); SELECT 2; END ; ROLLBACK'],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC; END; ROLLBACK'],
    ['CREATE RULE r AS ON INSERT TO contract DO ALSO (UPDATE a SET b = 1; DELETE FROM c); ROLLBACK'],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; END; ROLLBACK'],
    ['CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT t.end FROM t; SELECT 1 end; END; ROLLBACK'],
    ['CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END AS end; SELECT 2 AS case; END; ROLLBACK'],
    ['CREATE PROCEDURE p() BEGIN ATOMIC END; ROLLBACK'],
  ])('reads a routine body or a rule action list as part of its statement: %s', (sql) => {
    expect(readSql(sql)).toEqual([{ kind: 'other' }, { kind: 'rollback', chain: false }]);
  });

  it('reads BEGIN ATOMIC as a body only in CREATE FUNCTION or PROCEDURE', () => {
    expect(readSql('SELECT begin atomic FROM t; END')).toEqual([{ kind: 'other' }, { kind: 'commit', chain: false }]);
    expect(readSql('CREATE TABLE t (begin int); END')).toEqual([{ kind: 'other' }, { kind: 'commit', chain: false }]);
    expect(readSql("CREATE FUNCTION f() RETURNS int AS 'SELECT 1; END' LANGUAGE sql; END")).toEqual([
      { kind: 'other' },
      { kind: 'commit', chain: false },
    ]);
  });

  it('folds only ASCII capitals in unquoted names, as PostgreSQL does in a UTF-8 database', () => {
    expect(readSql('SAVEPOINT Étape; SAVEPOINT ÉTAPE; ROLLBACK TO Stage')).toEqual([
      { kind: 'savepoint', name: 'Étape' },
      { kind: 'savepoint', name: 'Étape' },
      { kind: 'rollback-to', name: 'stage' },
    ]);
    expect(readSql('UPDATE Ünterlagen SET a = 1; DELETE FROM \u212Aontract')).toEqual([
      write([undefined, 'Ünterlagen']),
      write([undefined, '\u212Aontract']),
    ]);
  });

  it('cuts a name to its first 63 bytes of UTF-8, at a whole character, as PostgreSQL does', () => {
    const stem = 'x'.repeat(63);
    expect(readSql(`SAVEPOINT ${stem}_one; ROLLBACK TO "${stem}_two"; RELEASE U&"${'\\0078'.repeat(64)}"`)).toEqual([
      { kind: 'savepoint', name: stem },
      { kind: 'rollback-to', name: stem },
      { kind: 'release', name: stem },
    ]);
    // é is 2 bytes, € 3, 𝄞 4: a character that would cross byte 63 is left out.
    expect(readSql(`SAVEPOINT ${'x'.repeat(62)}é; SAVEPOINT ${'x'.repeat(61)}€; SAVEPOINT "${'x'.repeat(60)}𝄞"`)).toEqual([
      { kind: 'savepoint', name: 'x'.repeat(62) },
      { kind: 'savepoint', name: 'x'.repeat(61) },
      { kind: 'savepoint', name: 'x'.repeat(60) },
    ]);
    expect(readSql(`SAVEPOINT ${'é'.repeat(31)}x; SAVEPOINT ${'é'.repeat(32)}`)).toEqual([
      { kind: 'savepoint', name: `${'é'.repeat(31)}x` },
      { kind: 'savepoint', name: 'é'.repeat(31) },
    ]);
    expect(readSql(`UPDATE public.${'Contract'.repeat(9)} SET a = 1`)).toEqual([write(['public', 'contract'.repeat(9).slice(0, 63)])]);
  });

  it.each([
    ['WITH recent AS (SELECT 1) SELECT count(*) AS delete FROM contract'],
    ['WITH recent AS (SELECT 1) SELECT c.id, c.title AS delete FROM contract c'],
    ['WITH recent AS (SELECT 1) SELECT p.delete FROM contract p'],
    ['WITH recent AS (SELECT 1) SELECT count(*) delete FROM contract'],
    ['WITH recent AS (SELECT 1) SELECT 1 AS insert, 2 AS update FROM contract, (SELECT 3 AS merge) m'],
    ['WITH recent AS (SELECT count(*) AS delete FROM contract) SELECT (SELECT 1) delete FROM contract'],
    [
      'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n FROM t) CYCLE n SET done TO true DEFAULT false USING path SELECT n AS delete FROM t',
    ],
  ])('reads no write in a WITH query that names a column or label like a verb: %s', (sql) => {
    expect(readSql(sql)).toEqual([{ kind: 'other' }]);
  });

  it.each([
    ['WITH t(delete, update) AS (SELECT 1, 2) DELETE FROM contract', write([undefined, 'contract'])],
    [
      'WITH a AS (SELECT 1), b AS NOT MATERIALIZED (UPDATE x SET c = 1) DELETE FROM contract',
      write([undefined, 'x'], [undefined, 'contract']),
    ],
    [
      'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n FROM t) SEARCH BREADTH FIRST BY n SET ord, u(n) AS (SELECT 2 UNION ALL SELECT n FROM u) CYCLE n SET done USING path INSERT INTO contract SELECT 1',
      write([undefined, 'contract']),
    ],
  ])('reads the writes of a WITH query whose parts name columns: %s', (sql, statement) => {
    expect(readSql(sql)).toEqual([statement]);
  });

  it('reads an unclosed quote or comment to the end of the string', () => {
    expect(readSql("SELECT 'open; ROLLBACK")).toEqual([{ kind: 'other' }]);
    expect(readSql('SELECT 1 /* open; ROLLBACK')).toEqual([{ kind: 'other' }]);
    expect(readSql('SELECT $x$ open; ROLLBACK')).toEqual([{ kind: 'other' }]);
    expect(readSql('UPDATE "open; ROLLBACK')).toEqual([write([undefined, 'open; ROLLBACK'])]);
  });

  it('gives every read of a text the same answer, which no caller can change', () => {
    const sql = 'TRUNCATE a, b; SAVEPOINT s';
    const answer = [write([undefined, 'a'], [undefined, 'b']), { kind: 'savepoint', name: 's' }];
    const first = readSql(sql) as SqlStatement[];
    const truncate = first[0] as unknown as { tables: TableName[] };
    expect(() => first.push({ kind: 'begin' })).toThrow(TypeError);
    expect(() => (first[1] = { kind: 'begin' })).toThrow(TypeError);
    expect(() => truncate.tables.pop()).toThrow(TypeError);
    expect(() => (truncate.tables[0].name = 'contract')).toThrow(TypeError);
    expect(() => ((first[1] as { name: string }).name = 't')).toThrow(TypeError);
    expect(readSql(sql)).toEqual(answer);
    expect(readSql(`${sql};`)).toEqual(answer);
  });

  it('reads a text again as it read it the first time, after many other texts, short and long', () => {
    const sql = 'UPDATE "contract" SET "title" = $1 WHERE "id" IN ($2)';
    expect(readSql(sql)).toEqual([write([undefined, 'contract'])]);
    for (let i = 0; i < 2000; i += 1) readSql(`DELETE FROM t${i}`);
    for (let i = 0; i < 300; i += 1) readSql(`SAVEPOINT s${i}; ${'-'.repeat(7000 + i * 10)}`);
    expect(readSql(sql)).toEqual([write([undefined, 'contract'])]);
    expect(readSql('DELETE FROM t1999')).toEqual([write([undefined, 't1999'])]);
    expect(readSql(`SAVEPOINT s299; ${'-'.repeat(9990)}`)).toEqual([{ kind: 'savepoint', name: 's299' }]);
  });

  it('reads a text without a semicolon (and no unclosed quote or comment) as it reads the same text ended by one', () => {
    const piece = fc.constantFrom(
      ...['BEGIN', 'start', 'transaction', 'COMMIT', 'end', 'ROLLBACK', 'to', 'savepoint', 'release', 'and', 'no', 'chain', 'with'],
      ...['insert', 'INTO', 'update', 'only', 'delete', 'from', 'merge', 'truncate', 'table', 'prepare', 'as', 'execute', 'deallocate'],
      ...['all', 'discard', 'select', 'for', 'do', 'contract', 'public', '"Odd ""Name"""', "'text'", "E'\\''", '$$ x $$', '$1', '42'],
      ...['U&"\\0063"', '(', ')', '.', ',', '=', '*', '\n', '-- note\n', '/* c */'],
      ...['create', 'function', 'atomic', 'case', 'search', 'cycle', 'set', 'using', `${'x'.repeat(62)}é`, `"${'y'.repeat(64)}"`],
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }), (pieces) => {
        const sql = pieces.join(' ');
        expect(readSql(sql)).toEqual(readSql(`${sql};`));
      }),
      { numRuns: 2000 },
    );
  });
});
