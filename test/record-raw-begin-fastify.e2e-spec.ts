import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { TestPostgres } from './support/postgres';
import { startRecordApp } from './support/record-app';

type Ending = 'commit' | 'rollback' | 'chain-then-rollback' | 'savepoint-rolled-back';

@Controller('batches')
class BatchesController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string; ending: Ending }): Promise<{ ok: true }> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    const entry = { action: 'batch_recorded', entityType: 'Batch', requestId: body.tag };
    try {
      await runner.query('begin');
      if (body.ending === 'savepoint-rolled-back') {
        await runner.query('SAVEPOINT s1');
        await this.audit.record(entry, { manager: runner.manager });
        await runner.query('ROLLBACK TO SAVEPOINT s1');
        await runner.query('COMMIT');
      } else if (body.ending === 'chain-then-rollback') {
        // The row commits with the first block; the chained block that follows rolls back.
        await this.audit.record(entry, { manager: runner.manager });
        await runner.query('COMMIT AND CHAIN');
        await runner.query('ROLLBACK');
      } else {
        await this.audit.record(entry, { manager: runner.manager });
        await runner.query(body.ending === 'commit' ? 'COMMIT' : 'ROLLBACK');
      }
    } finally {
      await runner.release();
    }
    return { ok: true };
  }
}

// docs/GUIDE.md (record()): a record() row in a transaction block TypeORM does not report stands for
// the request only if found committed when the request's row is decided; otherwise the request
// gets its own row. Here on Fastify, with a lowercase begin, a raw savepoint and COMMIT AND CHAIN.
describe('record() in a raw block, on Fastify: the row stands for the request only if it committed', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startRecordApp(db, 'batches', [BatchesController], 'fastify');
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, ending: Ending) => {
    await request(app.getHttpServer()).post('/batches').set('x-request-id', tag).send({ tag, ending }).expect(201);
    return db.query<{ action: string }>(`SELECT action FROM audit_log WHERE request_id = $1 ORDER BY action`, [tag], 'batches');
  };

  it('lets the record() row stand for the request when the block commits', async () => {
    expect(await run('fy-1', 'commit')).toEqual([{ action: 'batch_recorded' }]);
  }, 30_000);

  it('gives the request its own row when the block rolls back', async () => {
    expect(await run('fy-2', 'rollback')).toEqual([{ action: 'batches.run' }]);
  }, 30_000);

  it('gives the request its own row when a raw savepoint around the row rolls back', async () => {
    expect(await run('fy-3', 'savepoint-rolled-back')).toEqual([{ action: 'batches.run' }]);
  }, 30_000);

  it('lets the row stand when it committed with COMMIT AND CHAIN and the chained block rolls back', async () => {
    expect(await run('fy-4', 'chain-then-rollback')).toEqual([{ action: 'batch_recorded' }]);
  }, 30_000);
});
