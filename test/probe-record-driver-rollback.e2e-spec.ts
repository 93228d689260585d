// PROMISE (docs/GUIDE.md, "Atomic audit"): "A record() row that does not commit stands for
// nothing … the request gets its own row". "Before the outer COMMIT, the module looks its record()
// rows up inside the transaction …: a row discarded by something TypeORM does not report (a
// savepoint rolled back with plain SQL) stands for nothing either, and when the look-up fails no
// row does." README: exactly one row per request.
//
// BREAK: the transaction holding a record() row is rolled back by something TypeORM does not
// report: a ROLLBACK through the driver's client of the transaction's own connection (as a
// library working on the raw `pg` client would send it). TypeORM then sends its COMMIT, which
// PostgreSQL answers with a warning ("there is no transaction in progress") and the command tag
// COMMIT. confirmRecordedRows() looks nothing up: depthOf() is 0 once `pg` says no block is open.
// transactionCommitted() at depth 0 then marks the record() row's context as recorded.
//
// OBSERVED: the contract and the record() row are rolled back (nothing stored), and the request
// has NO row at all in audit_log (expected its own row, action 'driver_rollback.run'; sync mode,
// so the row would be in the table when the response arrives). Received { stored: 0, rows: [] }.
//
// SEVERITY: high for what it does (a request silently leaves no audit row); low in likelihood
// (needs a ROLLBACK through the driver inside a TypeORM transaction).
//
// FIX GUESS: run the look-up whenever TypeORM reports a transaction holding record() rows, also
// when `pg` says no block is open (then every row it holds stands for nothing: the block ended
// unseen); or treat a TypeORM COMMIT met with `pg` idle before it as an end not seen (rows unconfirmed).
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('driver-rollback')
class DriverRollbackController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Driver Ltd' });
      await this.audit.record({ action: 'contract_signed', entityType: 'Contract', requestId: body.tag }, { manager });
      // The work is abandoned on the driver's client of the same connection.
      const client = (manager.queryRunner as unknown as { databaseConnection: { query(sql: string): Promise<unknown> } })
        .databaseConnection;
      await client.query('ROLLBACK');
    });
  }
}

describe('record() in a TypeORM transaction rolled back through the driver', () => {
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

  it('leaves the request its own row', async () => {
    const tag = 'driver-rollback-1';
    await request(app.getHttpServer()).post('/driver-rollback').set('x-request-id', tag).send({ tag }).expect(201);
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const rows = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1', [tag]);
    expect({ stored: stored.length, rows: rows.map((row) => row.action) }).toEqual({ stored: 0, rows: ['driver_rollback.run'] });
  });
});
