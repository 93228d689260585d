import { readTypeormWrite, renumbered } from './typeorm-writes';

describe("TypeORM's writes, as their text says", () => {
  it("reads each row of a save()'s INSERT: parameters, defaults, NULL and expressions by column", () => {
    expect(
      readTypeormWrite(
        `INSERT INTO "contract"("id", "title", "version", "clientId") VALUES (DEFAULT, $1, 1, $2), (DEFAULT, $3, 1, NULL) RETURNING "id"`,
      ),
    ).toEqual({
      kind: 'insert',
      table: 'contract',
      columns: ['id', 'title', 'version', 'clientId'],
      rows: [
        ['default', { param: 0 }, 'expression', { param: 1 }],
        ['default', { param: 2 }, 'expression', 'null'],
      ],
      where: '',
      whereParams: [],
    });
  });

  it('reads a schema, quoted names with quotes, an alias, DEFAULT VALUES and expressions holding commas, parentheses and strings', () => {
    expect(
      readTypeormWrite(`INSERT INTO "sales"."Order ""A"""("at", "note") VALUES (now(), coalesce($1, 'a, (b')) RETURNING "id"`),
    ).toEqual(expect.objectContaining({ table: 'sales.Order "A"', columns: ['at', 'note'], rows: [['expression', 'expression']] }));
    expect(readTypeormWrite(`INSERT INTO "contract" AS "c"("title") VALUES ($1)`)).toEqual(
      expect.objectContaining({ table: 'contract', rows: [[{ param: 0 }]] }),
    );
    expect(readTypeormWrite(`INSERT INTO "contract" DEFAULT VALUES RETURNING "id"`)).toEqual(
      expect.objectContaining({ table: 'contract', columns: [], rows: [[]] }),
    );
  });

  it("reads an UPDATE's values set and the parameters of its WHERE", () => {
    expect(
      readTypeormWrite(
        `UPDATE "contract" SET "title" = $1, "clientId" = $2, "version" = "version" + 1, "updatedAt" = CURRENT_TIMESTAMP WHERE "id" IN ($3) RETURNING "version", "updatedAt"`,
      ),
    ).toEqual({
      kind: 'update',
      table: 'contract',
      columns: ['title', 'clientId', 'version', 'updatedAt'],
      rows: [[{ param: 0 }, { param: 1 }, 'expression', 'expression']],
      where: '"id" IN ($3)',
      whereParams: [2],
    });
    expect(readTypeormWrite(`UPDATE "contract" SET "clientId" = $1 WHERE ("tenant" = $2 AND "number" = $3)`)).toEqual(
      expect.objectContaining({ columns: ['clientId'], whereParams: [1, 2] }),
    );
  });

  it('reads no other statement, no insert that may not insert its rows as written, and no text it does not follow', () => {
    for (const sql of [
      'SELECT 1',
      'DELETE FROM "contract" WHERE "id" = $1',
      'INSERT INTO contract(title) VALUES ($1)',
      `INSERT INTO "contract"("title") VALUES ($1) ON CONFLICT DO NOTHING`,
      `INSERT INTO "contract"("title") SELECT "title" FROM "draft"`,
      `INSERT INTO "contract"("title", "clientId") VALUES ($1)`,
      `INSERT INTO "contract"("title") VALUES (E'it\\'s')`,
      `INSERT INTO "contract"("title") VALUES ($$a, b$$)`,
      `INSERT INTO "contract"("title") VALUES ($1 /* , */)`,
      `INSERT INTO "contract"("title") VALUES ('unclosed)`,
      `UPDATE "contract" SET "title" = $1 WHERE "id" = $2 -- note`,
      `UPDATE "contract" SET "title" = ($1 WHERE "id" = $2`,
    ]) {
      expect([sql, readTypeormWrite(sql)]).toEqual([sql, undefined]);
    }
  });

  it('numbers the parameters of a WHERE clause from $1, for a read of the same rows', () => {
    expect(renumbered('"id" IN ($3, $12)')).toEqual({ text: '"id" IN ($1, $2)', params: [2, 11] });
    expect(renumbered(`("a" = $2 AND "b" = '$1')`)).toEqual({ text: `("a" = $1 AND "b" = '$1')`, params: [1] });
    expect(renumbered('"id" = $$x$$')).toBeUndefined();
  });
});
