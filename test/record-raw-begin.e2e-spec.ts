import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { TestPostgres } from './support/postgres';
import { startRecordApp } from './support/record-app';

/**
 * How the handler ends the block it opens itself: `none` opens no block; `failed-commit` commits
 * after a statement failed (PostgreSQL answers ROLLBACK); `typeorm-raw-rollback` rolls back with
 * SQL a transaction TypeORM opened, then lets TypeORM commit; `failed-commit-then-typeorm`
 * records in a transaction TypeORM opens after a failed block's COMMIT on the same runner.
 */
type Ending = 'rollback' | 'commit' | 'driver-rollback' | 'failed-commit' | 'failed-commit-then-typeorm' | 'typeorm-raw-rollback' | 'none';

/** A handler that records on a query runner, in a transaction block it opens and ends without TypeORM (or in none). */
@Controller('batches')
class BatchesController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string; ending: Ending }): Promise<{ ok: true }> {
    const runner = this.db.createQueryRunner();
    // TypeORM hands out the driver's client: a block opened on it is no more reported than one opened with runner.query().
    const client = (await runner.connect()) as { query(sql: string): Promise<unknown> };
    const entry = { action: 'batch_recorded', entityType: 'Batch', requestId: body.tag };
    try {
      if (body.ending === 'none') {
        await this.audit.record(entry, { manager: runner.manager });
      } else if (body.ending === 'typeorm-raw-rollback') {
        await runner.startTransaction();
        await this.audit.record(entry, { manager: runner.manager });
        await runner.query('ROLLBACK');
        await runner.commitTransaction();
      } else if (body.ending === 'failed-commit-then-typeorm') {
        await runner.query('BEGIN');
        await runner.query('SELECT 1 / 0').catch(() => undefined);
        await runner.query('COMMIT');
        await runner.startTransaction();
        await this.audit.record(entry, { manager: runner.manager });
        await runner.commitTransaction();
      } else if (body.ending === 'failed-commit') {
        await runner.query('BEGIN');
        await this.audit.record(entry, { manager: runner.manager });
        await runner.query('SELECT 1 / 0').catch(() => undefined);
        await runner.query('COMMIT');
      } else if (body.ending === 'driver-rollback') {
        await client.query('START TRANSACTION');
        await this.audit.record(entry, { manager: runner.manager });
        await client.query('ROLLBACK');
      } else {
        await runner.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await this.audit.record(entry, { manager: runner.manager });
        await runner.query(body.ending === 'commit' ? 'COMMIT' : 'ROLLBACK');
      }
    } finally {
      await runner.release();
    }
    return { ok: true };
  }
}

// docs/GUIDE.md: a record() row that does not commit stands for nothing, and the request gets its
// own row. A transaction block TypeORM does not report (opened with plain SQL on a query runner, or
// through the driver's client) is asked of PostgreSQL after the insert; the row then stands for the
// request only if, when the request's row is decided, another connection finds it committed.
describe('record() inside a transaction block TypeORM does not report', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startRecordApp(db, 'batches', [BatchesController]);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, ending: Ending) => {
    await request(app.getHttpServer()).post('/batches').set('x-request-id', tag).send({ tag, ending }).expect(201);
    return db.query<{ action: string }>(`SELECT action FROM audit_log WHERE request_id = $1 ORDER BY action`, [tag], 'batches');
  };

  it('gives the request its own row when the block opened with SQL rolls back', async () => {
    expect(await run('raw-begin-1', 'rollback')).toEqual([{ action: 'batches.run' }]);
  }, 30_000);

  it('gives the request its own row when the block opened through the driver rolls back', async () => {
    expect(await run('raw-begin-2', 'driver-rollback')).toEqual([{ action: 'batches.run' }]);
  }, 30_000);

  it('gives the request its own row when PostgreSQL answers the block’s COMMIT with ROLLBACK', async () => {
    expect(await run('raw-begin-5', 'failed-commit')).toEqual([{ action: 'batches.run' }]);
  }, 30_000);

  it('gives the request its own row when a transaction TypeORM opened is rolled back with SQL', async () => {
    expect(await run('raw-begin-6', 'typeorm-raw-rollback')).toEqual([{ action: 'batches.run' }]);
  }, 30_000);

  it('lets the record() row stand for the request when the block commits', async () => {
    expect(await run('raw-begin-3', 'commit')).toEqual([{ action: 'batch_recorded' }]);
  }, 30_000);

  it('lets a record() row stand when its transaction commits after a failed block’s COMMIT on the same runner', async () => {
    // The DataSource's transactions are followed from its first record() on.
    expect(await run('raw-begin-7-first', 'none')).toEqual([{ action: 'batch_recorded' }]);
    expect(await run('raw-begin-7', 'failed-commit-then-typeorm')).toEqual([{ action: 'batch_recorded' }]);
  }, 30_000);

  it('lets the record() row stand for the request when no block is open', async () => {
    expect(await run('raw-begin-4', 'none')).toEqual([{ action: 'batch_recorded' }]);
  }, 30_000);
});
