// A query `pg` fails on its own (`query_timeout`: no ErrorResponse, PostgreSQL still running it)
// is followed with the transaction status taken as not known, never with the status from before
// the query: inside a TypeORM transaction, the record() row a `COMMIT` in that string committed stays
// the request's only row (looked up from another connection), and in a block opened with SQL the
// change its COMMIT committed is counted (docs/GUIDE.md, "Atomic audit" and the diffs section).
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** pg's query_timeout for the app's DataSource: the follow-up sleeps longer, a queued statement after it waits less than this. */
const QUERY_TIMEOUT_MS = 2000;
const SLOW = 'SELECT pg_sleep(3)';

@Controller('timed-out')
class TimedOutController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post('record')
  async record(@Body() body: { tag: string; followUp: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Batch Ltd' });
      await this.audit.record({ action: 'contract_signed', entityType: 'Contract', requestId: body.tag }, { manager });
      try {
        // The batch commits, then its follow-up fails (on the server, or pg gives up waiting for it).
        await manager.query(`COMMIT; ${body.followUp}`);
      } catch {
        // The follow-up is optional.
      }
    });
  }

  @Post('block')
  async block(@Body() body: { tag: string }): Promise<void> {
    const runner = this.db.createQueryRunner();
    try {
      await runner.query('BEGIN');
      // A query builder's write opens no transaction of its own: it is held with the block.
      await runner.manager
        .createQueryBuilder()
        .insert()
        .into(Contract)
        .values({ title: `${body.tag} a`, counterparty: 'Block Ltd' })
        .execute();
      try {
        await runner.query(`COMMIT; ${SLOW}`);
      } catch {
        // The app cannot tell how far the string ran: it rolls back what may still be open.
        await runner.query('ROLLBACK');
      }
    } finally {
      await runner.release();
    }
  }
}

describe('a query pg fails on its own (query_timeout) while PostgreSQL runs it on', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      { mode: 'sync', writeTimeoutMs: 10_000 },
      { controllers: [TimedOutController], appUrl: `${db.url()}?query_timeout=${QUERY_TIMEOUT_MS}` },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  async function rowsOf(tag: string) {
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const rows = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1 ORDER BY occurred_at', [tag]);
    return { stored: stored.length, rows: rows.map((row) => row.action) };
  }

  it('keeps the committed record() row the request’s only row when the follow-up fails on the server', async () => {
    const tag = 'timed-out-server';
    await request(app.getHttpServer()).post('/timed-out/record').set('x-request-id', tag).send({ tag, followUp: 'SELECT 1/0' }).expect(201);
    expect(await rowsOf(tag)).toEqual({ stored: 1, rows: ['contract_signed'] });
  });

  it('keeps the committed record() row the request’s only row when pg gives up on the follow-up', async () => {
    const tag = 'timed-out-client';
    await request(app.getHttpServer()).post('/timed-out/record').set('x-request-id', tag).send({ tag, followUp: SLOW }).expect(201);
    expect(await rowsOf(tag)).toEqual({ stored: 1, rows: ['contract_signed'] });
  });

  it('lists or counts the change of a block whose COMMIT ran in a string pg gave up on', async () => {
    const tag = 'timed-out-block';
    await request(app.getHttpServer()).post('/timed-out/block').set('x-request-id', tag).send({ tag }).expect(201);
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const changes = (await changesOf(db, tag)) as { entities?: unknown[]; entitiesOmitted?: number };
    expect({ stored: stored.length, listedOrCounted: (changes.entities?.length ?? 0) + (changes.entitiesOmitted ?? 0) }).toEqual({
      stored: 1,
      listedOrCounted: 1,
    });
  });
});
