// A TypeORM transaction holding a record() row, ended through the driver's client of its own
// connection (as a library working on the raw `pg` client would end it), before TypeORM's COMMIT,
// which PostgreSQL then answers with a warning: the module saw no end, so the row stands for the
// request only if another connection finds it committed when the request's row is decided.
// Rolled back, the request gets its own row; committed, the record() row stays its only row
// (docs/GUIDE.md, "Atomic audit").
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('driver-rollback')
class DriverRollbackController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string; end: 'ROLLBACK' | 'COMMIT'; withoutRecord?: boolean }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Driver Ltd' });
      if (!body.withoutRecord)
        await this.audit.record({ action: 'contract_signed', entityType: 'Contract', requestId: body.tag }, { manager });
      // The work is abandoned on the driver's client of the same connection.
      const client = (manager.queryRunner as unknown as { databaseConnection: { query(sql: string): Promise<unknown> } })
        .databaseConnection;
      await client.query(body.end);
    });
  }
}

describe('a TypeORM transaction ended through the driver before its COMMIT', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [DriverRollbackController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('leaves the request its own row when the driver rolled the transaction back', async () => {
    const tag = 'driver-rollback-1';
    await request(app.getHttpServer()).post('/driver-rollback').set('x-request-id', tag).send({ tag, end: 'ROLLBACK' }).expect(201);
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const rows = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1', [tag]);
    expect({ stored: stored.length, rows: rows.map((row) => row.action) }).toEqual({ stored: 0, rows: ['driver_rollback.run'] });
  });

  it('keeps the record() row the request’s only row when the driver committed the transaction', async () => {
    const tag = 'driver-commit-1';
    await request(app.getHttpServer()).post('/driver-rollback').set('x-request-id', tag).send({ tag, end: 'COMMIT' }).expect(201);
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const rows = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1', [tag]);
    expect({ stored: stored.length, rows: rows.map((row) => row.action) }).toEqual({ stored: 1, rows: ['contract_signed'] });
  });

  it('lists no change of a transaction the driver rolled back, and counts it', async () => {
    const tag = 'driver-rollback-2';
    await request(app.getHttpServer())
      .post('/driver-rollback')
      .set('x-request-id', tag)
      .send({ tag, end: 'ROLLBACK', withoutRecord: true })
      .expect(201);
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const changes = await changesOf(db, tag);
    expect({ stored: stored.length, entities: changes.entities ?? [], omitted: changes.entitiesOmitted }).toEqual({
      stored: 0,
      entities: [],
      omitted: 1,
    });
  });
});
