// A string PostgreSQL continues on a later line is read as one string, in the mode of its first part.
// PostgreSQL joins a string constant and a quote that follows it past white space holding a line
// break (`--` comments allowed, block comments not), and reads the part after that quote as it read
// the first: an `E'…'` string's continuation keeps its backslash escapes. Raw SQL in a transaction
// TypeORM opened is read statement by statement, so a `\'` inside such a continuation must not end
// it: a ROLLBACK inside the string is text (the save the transaction committed is listed), and a
// ROLLBACK after a continuation that ends with `\''` is a statement (the save it rolled back is
// neither listed nor counted). The first test checks on the server that each form the reader joins
// is one string to PostgreSQL.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** One string constant to PostgreSQL; a ROLLBACK after a string to the reader. */
const PHANTOM_ROLLBACK = "SELECT E'x'\n'\\'; ROLLBACK; --'";
/** A ROLLBACK to PostgreSQL; inside one string to the reader. */
const HIDDEN_ROLLBACK = "SELECT E'x'\n'y\\'' ; ROLLBACK ; SELECT 'z'";

@Controller('continued')
class ContinuedController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string; sql: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Continued Ltd' });
      await manager.query(body.sql);
    });
  }
}

describe('an E string continued on the next line, inside a TypeORM transaction', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [ContinuedController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, sql: string) => {
    await request(app.getHttpServer()).post('/continued').set('x-request-id', tag).send({ tag, sql }).expect(201);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const changes = await changesOf(db, tag);
    return {
      stored: stored.map((row) => row.title),
      entities: ((changes.entities as unknown[]) ?? []).length,
      entitiesOmitted: changes.entitiesOmitted ?? 0,
    };
  };

  it.each([
    [PHANTOM_ROLLBACK, "x'; ROLLBACK; --"],
    ["SELECT E'x'\r'\\''", "x'"],
    ["SELECT E'x' -- note\n'\\''", "x'"],
    ["SELECT E'x'\n-- note\r\n  '\\''", "x'"],
    ["SELECT E'x'\n'y'\n\t\f\v'\\''", "xy'"],
    ["SELECT 'x'\n'\\'", 'x\\'],
  ])('PostgreSQL reads %j as one string', async (sql, text) => {
    const [row] = await db.query<{ text: string }>(`${sql} AS text`);
    expect(row.text).toBe(text);
  });

  it.each(["SELECT E'x' /* note */\n'y'", "SELECT E'x' 'y'"])('PostgreSQL does not join %j', async (sql) => {
    await expect(db.query(sql)).rejects.toThrow(/syntax error/);
  });

  it('lists the save its transaction committed', async () => {
    expect(await run('continued-commit', PHANTOM_ROLLBACK)).toEqual({ stored: ['continued-commit a'], entities: 1, entitiesOmitted: 0 });
  });

  it('traces nothing of a save PostgreSQL rolled back', async () => {
    expect(await run('continued-rollback', HIDDEN_ROLLBACK)).toEqual({ stored: [], entities: 0, entitiesOmitted: 0 });
  });
});
