// The scenarios of test/raw-failed-string-commits.e2e-spec.ts with each error read before the
// ReadyForQuery after it (SplitAnswerProxy), as PostgreSQL may deliver them: a string of `BEGIN`,
// an `UPDATE`, `COMMIT` and a failing `SELECT 1/0`, and the same in an implicit block, count the
// committed UPDATE on the request's row (docs/GUIDE.md, diffs section). The failed string is
// followed in its caller's audit context once the status after it has come.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';
import { SplitAnswerProxy } from './support/split-answer-proxy';

type Shape = 'commit-then-failure' | 'implicit-commit-then-failure';

@Controller('raw-failed')
class FailedStringController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { from: string; to: string; shape: Shape }): Promise<{ failed: boolean }> {
    const update = `UPDATE contract SET title = '${body.to}' WHERE title = '${body.from}'`;
    // PostgreSQL commits the update at the COMMIT; only the statement after it fails (and rolls back alone).
    const sql = body.shape === 'commit-then-failure' ? `BEGIN; ${update}; COMMIT; SELECT 1/0` : `${update}; COMMIT; SELECT 1/0`;
    try {
      await this.db.query(sql);
      return { failed: false };
    } catch {
      return { failed: true };
    }
  }
}

describe.each([
  ['straight from PostgreSQL', false],
  ['with each error read before the status after it', true],
])('a committed raw write in a string that fails later (%s)', (_how, split) => {
  let db: TestPostgres;
  let proxy: SplitAnswerProxy | undefined;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    proxy = split ? await SplitAnswerProxy.start(db.port, 50) : undefined;
    const appUrl = proxy && db.url().replace(`:${db.port}/`, `:${proxy.port}/`);
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [FailedStringController], appUrl });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await proxy?.stop();
    await db?.stop();
  });

  const run = async (tag: string, shape: Shape) => {
    await db.query(`INSERT INTO contract (title, counterparty) VALUES ($1, 'Failed Ltd')`, [tag]);
    const response = await request(app.getHttpServer())
      .post('/raw-failed')
      .set('x-request-id', tag)
      .send({ from: tag, to: `${tag} done`, shape })
      .expect(201);
    const changes = await changesOf(db, tag);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1', [`${tag}%`]);
    return {
      failed: (response.body as { failed: boolean }).failed,
      omitted: changes.entitiesOmitted,
      stored: stored.map((row) => row.title),
    };
  };

  it('counts a raw write committed by BEGIN … COMMIT when a later statement of the same string fails', async () => {
    expect(await run('commit-fail', 'commit-then-failure')).toEqual({ failed: true, omitted: 1, stored: ['commit-fail done'] });
    if (proxy) expect(proxy.splits).toBeGreaterThan(0);
  });

  it('counts a raw write committed by a COMMIT in an implicit block when a later statement of the same string fails', async () => {
    expect(await run('implicit-fail', 'implicit-commit-then-failure')).toEqual({
      failed: true,
      omitted: 1,
      stored: ['implicit-fail done'],
    });
  });
});
