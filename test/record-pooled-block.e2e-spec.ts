// docs/GUIDE.md, "Atomic audit": a `record()` row that does not commit stands for nothing, and the
// request gets its own row; after a `record()` on a connection TypeORM reports in no transaction,
// the module reads that connection's transaction status, and with a block open the row stands for
// the request only if another connection finds it committed. That holds for
// `record(entry, { manager: dataSource.manager })` too (a manager without a query runner, as
// `repository.manager` is): its insert runs on a query runner of the module's own, whose status is
// read after it. The pooled connection it gets may be inside a block: one opened as SQL through
// the DataSource (`dataSource.query('BEGIN')`), or one a query runner was released in without a
// rollback (TypeORM's `release()` does not roll back, and pg-pool hands its idle connections last
// in, first out). A block that commits leaves the `record()` row the request's only row; one that
// rolls back, or never commits, leaves the request its own row.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { eventually, nothingPending } from './support/app';
import { startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('pooled')
class PooledController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  /** A block sent as SQL through the DataSource, a record() through its manager, then the block's end. */
  @Post('block')
  async block(@Body() body: { tag: string; end: 'COMMIT' | 'ROLLBACK' }): Promise<{ done: boolean }> {
    await this.db.query('BEGIN');
    await this.audit.record(
      { action: 'pooled_noted', entityType: 'Note', entityId: body.tag, requestId: body.tag },
      { manager: this.db.manager },
    );
    await this.db.query(body.end);
    return { done: true };
  }

  /** A runner released inside its transaction without a rollback (an error path that skips it): TypeORM's release() does not end the block. */
  @Post('leaves-block')
  async leavesBlock(): Promise<void> {
    const runner = this.db.createQueryRunner();
    try {
      await runner.startTransaction();
      await runner.query('SELECT 1');
      throw new Error('work failed before its commit');
    } finally {
      await runner.release();
    }
  }

  /** Another request: a record() through the DataSource's manager, nothing else. */
  @Post('record')
  async record(@Body() body: { tag: string }): Promise<{ done: boolean }> {
    await this.audit.record(
      { action: 'pooled_noted', entityType: 'Note', entityId: body.tag, requestId: body.tag },
      { manager: this.db.manager },
    );
    return { done: true };
  }

  @Post('later')
  later(): { done: boolean } {
    return { done: true };
  }
}

describe('a record() through a DataSource manager whose pooled connection is in a block', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const rowsOf = (tag: string) =>
    db.query<{ action: string; outcome: string }>('SELECT action, outcome FROM audit_log WHERE request_id = $1 ORDER BY action', [tag]);

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [PooledController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, end: 'COMMIT' | 'ROLLBACK') => {
    await request(app.getHttpServer()).post('/pooled/block').set('x-request-id', tag).send({ tag, end }).expect(201);
    const later = `${tag}-later`;
    await request(app.getHttpServer()).post('/pooled/later').set('x-request-id', later).send({}).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    await nothingPending(app);
    return rowsOf(tag);
  };

  it('keeps the record() row alone when the block commits', async () => {
    expect(await run('pooled-commit', 'COMMIT')).toEqual([{ action: 'pooled_noted', outcome: 'success' }]);
  });

  it('gives a request its own row when its record() landed in the block an earlier request left open', async () => {
    const tag = 'pooled-left';
    await request(app.getHttpServer()).post('/pooled/leaves-block').set('x-request-id', `${tag}-first`).send({}).expect(500);
    await request(app.getHttpServer()).post('/pooled/record').set('x-request-id', tag).send({ tag }).expect(201);
    // The block left open never commits: its session ends (a restart, a proxy's idle timeout, the server's own limit).
    await db.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
    );
    const later = `${tag}-later`;
    await request(app.getHttpServer()).post('/pooled/later').set('x-request-id', later).send({}).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    await nothingPending(app);
    expect(await rowsOf(tag)).toEqual([{ action: 'pooled.record', outcome: 'success' }]);
  });

  it('gives the request its own row when the block rolls the record() row back', async () => {
    expect(await run('pooled-rollback', 'ROLLBACK')).toEqual([{ action: 'pooled.block', outcome: 'success' }]);
  });
});
