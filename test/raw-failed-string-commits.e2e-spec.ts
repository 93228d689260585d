import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AnswerFaultProxy } from './support/answer-fault-proxy';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** How the handler sends one raw `UPDATE contract` that no entity event answers. */
type Shape = 'commit-then-failure' | 'implicit-commit-then-failure' | 'prepared-execute';

@Controller('raw-failed')
class FailedStringController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { from: string; to: string; shape: Shape }): Promise<{ failed: boolean }> {
    const update = `UPDATE contract SET title = '${body.to}' WHERE title = '${body.from}'`;
    if (body.shape === 'prepared-execute') {
      const runner = this.db.createQueryRunner();
      await runner.connect();
      try {
        await runner.query(`PREPARE contract_update AS ${update}`);
        await runner.query('EXECUTE contract_update');
        await runner.query('DEALLOCATE contract_update');
      } finally {
        await runner.release();
      }
      return { failed: false };
    }
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

// docs/GUIDE.md ("Diffs"): "raw SQL (`query()`) cannot be diffed, but [it leaves] a trace: each
// statement that inserts into, updates, deletes from, truncates or merges into an audited entity's
// table inside a request or scope [...] counts 1 in `changes.entitiesOmitted` once committed".
// Both straight from PostgreSQL and with each error read before the ReadyForQuery after it (which
// carries the transaction status): PostgreSQL flushes an error on its own, and a loaded machine or
// a network may deliver the two apart; the failed string is followed once that status has come.
describe.each([
  ['straight from PostgreSQL', false],
  ['with each error read before the status after it', true],
])('a committed raw write is counted, even when its query string fails later or it runs as a prepared statement (%s)', (_how, split) => {
  let db: TestPostgres;
  let proxy: AnswerFaultProxy | undefined;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    proxy = split ? await AnswerFaultProxy.start(db.port, { delayMs: 50 }) : undefined;
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
    if (proxy) expect(proxy.errors).toBeGreaterThan(0);
  });

  it('counts a raw write committed by a COMMIT in an implicit block when a later statement of the same string fails', async () => {
    expect(await run('implicit-fail', 'implicit-commit-then-failure')).toEqual({
      failed: true,
      omitted: 1,
      stored: ['implicit-fail done'],
    });
  });

  it('counts a raw write made by EXECUTE of a statement prepared with PREPARE … AS UPDATE', async () => {
    expect(await run('prepared', 'prepared-execute')).toEqual({ failed: false, omitted: 1, stored: ['prepared done'] });
  });
});
