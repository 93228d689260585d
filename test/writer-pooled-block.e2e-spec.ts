// The trail is whole (README, docs/GUIDE.md), and in sync mode a response's last bytes wait until
// its row is written, committed or in the spool: also when the app and the trail share one
// DataSource (as `record()` needs, docs/GUIDE.md "Atomic audit") and the app leaves a pooled
// connection inside a transaction block. TypeORM's `QueryRunner.release()` does not roll back, so
// a handler whose error path releases its runner without `rollbackTransaction()` hands the pool a
// connection in an open block, and pg-pool hands its idle connections last in, first out: a batch
// sent on it would run inside that block and never commit. The writer sends no batch on such a
// connection (it takes another, and leaves the app's block as it was), says so once on stderr
// (`audit.connection_in_block`), and with a pool of one connection gives that connection up (the
// server rolls its block back) to open a clean one.
import { Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { eventually, nothingPending } from './support/app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { startAuditApp } from './support/tx-app';

@Controller('work')
class WorkController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** A runner released inside its transaction (an error path without a rollback). */
  @Post('fails')
  async fails(): Promise<void> {
    const runner = this.db.createQueryRunner();
    try {
      await runner.startTransaction();
      await runner.query('SELECT 1');
      throw new Error('work failed before its commit');
    } finally {
      await runner.release();
    }
  }

  @Post('plain')
  plain(): { done: boolean } {
    return { done: true };
  }
}

const scenarios = [
  { name: 'sync mode', mode: 'sync', poolSize: undefined, blocksLeft: 1 },
  { name: 'async mode', mode: 'async', poolSize: undefined, blocksLeft: 1 },
  { name: 'sync mode, a pool of one connection', mode: 'sync', poolSize: 1, blocksLeft: 0 },
] as const;

describe.each(scenarios)('the writer beside a pooled connection a runner was released in ($name)', ({ mode, poolSize, blocksLeft }) => {
  const database = `writer_pooled_block_${mode}_${poolSize ?? 'default'}`;
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const rowsOf = (tag: string) => db.query<{ outcome: string }>('SELECT outcome FROM audit_log WHERE request_id = $1', [tag], database);

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    await db.createDatabase(database);
    app = await startAuditApp(db, { database, controllers: [WorkController], audit: { mode }, poolSize });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  });

  it("commits the failed request's row and the next request's row, and says once that a connection was in a block", async () => {
    await request(app.getHttpServer()).post('/work/fails').set('x-request-id', `${mode}-failed`).send({}).expect(500);
    await request(app.getHttpServer()).post('/work/plain').set('x-request-id', `${mode}-next`).send({}).expect(201);
    await nothingPending(app);
    const status = app.get(AuditService).status();
    expect({ pending: status.pending, buffered: status.buffered, lastError: status.lastError }).toEqual({
      pending: 0,
      buffered: 0,
      lastError: null,
    });
    // The rows must not depend on the app's block: its session ends (a restart, a proxy's or the server's idle timeout).
    const [ended] = await db.query<{ n: number }>(
      "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
      [],
      database,
    );
    // The app's block is left as it was, unless the pool has no other connection to give.
    expect(ended.n).toBe(blocksLeft);
    const later = `${mode}-later`;
    await request(app.getHttpServer()).post('/work/plain').set('x-request-id', later).send({}).expect(201);
    await eventually(async () => (await rowsOf(later)).length > 0);
    await nothingPending(app);
    expect({ failed: await rowsOf(`${mode}-failed`), next: await rowsOf(`${mode}-next`) }).toEqual({
      failed: [{ outcome: 'failure' }],
      next: [{ outcome: 'success' }],
    });
    expect(stderr.of('audit.connection_in_block')).toEqual([expect.objectContaining({ level: 'warn' })]);
    expect(stderr.other).toEqual([]);
  });
});
