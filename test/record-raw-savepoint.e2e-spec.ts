import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { TestPostgres } from './support/postgres';
import { startRecordApp } from './support/record-app';

/** A handler that records its row inside a savepoint it opens and rolls back with plain SQL (legal PostgreSQL use). */
@Controller('steps')
class StepsController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async step(@Body() body: { tag: string }): Promise<{ ok: true }> {
    await this.db.transaction(async (manager) => {
      await manager.query('SAVEPOINT step');
      await this.audit.record({ action: 'step_recorded', entityType: 'Step', requestId: body.tag }, { manager });
      // The step is abandoned: its work, the audit row with it, is rolled back; the transaction commits.
      await manager.query('ROLLBACK TO SAVEPOINT step');
    });
    return { ok: true };
  }
}

// A record() row suppresses the request's own row only if it committed (README): a savepoint opened
// and rolled back with plain SQL, which TypeORM does not see, discards the record() row; the rows
// are looked up in their transaction before its COMMIT, so the request still gets its one row.
describe('record() inside a savepoint rolled back with SQL', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startRecordApp(db, 'steps', [StepsController]);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('the request still gets exactly one row', async () => {
    await request(app.getHttpServer()).post('/steps').set('x-request-id', 'raw-sp-1').send({ tag: 'raw-sp-1' }).expect(201);
    const rows = await db.query<{ action: string }>(`SELECT action FROM audit_log WHERE request_id = 'raw-sp-1'`, [], 'steps');
    expect(rows).toEqual([{ action: 'steps.step' }]);
  }, 30_000);
});
