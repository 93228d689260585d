import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('record-block')
class RecordBlockController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string; typeorm: boolean }): Promise<void> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    try {
      if (body.typeorm) await runner.startTransaction();
      else await runner.query('BEGIN');
      await runner.manager.createQueryBuilder().insert().into(Contract).values({ title: body.tag, counterparty: 'Block Ltd' }).execute();
      await this.audit.record({ action: 'contract_imported', entityType: 'Contract', requestId: body.tag }, { manager: runner.manager });
      if (body.typeorm) await runner.commitTransaction();
      else await runner.query('COMMIT');
    } finally {
      await runner.release();
    }
  }
}

// docs/GUIDE.md: a record() row written in a transaction carries the uncommitted changes of that
// transaction (they commit or roll back with it), and the row then stands for the request; a change
// made in a block TypeORM does not report is held until its COMMIT is seen, then handed over.
// Either way, a committed change reaches the trail: here on the record() row, which carries what
// the raw block holds (GUIDE, "A change made on a query runner in a transaction block ...").
describe('record() and an entity change in one raw block: the change reaches the record() row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [RecordBlockController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const rowsOf = async (tag: string, typeorm: boolean) => {
    await request(app.getHttpServer()).post('/record-block').set('x-request-id', tag).send({ tag, typeorm }).expect(201);
    expect(await db.query('SELECT title FROM contract WHERE title = $1', [tag])).toEqual([{ title: tag }]);
    const rows = await db.query<{ action: string; changes: { entities?: { type: string; op: string }[] } | null }>(
      'SELECT action, changes FROM audit_log WHERE request_id = $1 ORDER BY action',
      [tag],
    );
    return rows.map((row) => ({
      action: row.action,
      entities: (row.changes?.entities ?? []).map((change) => `${change.type}:${change.op}`),
    }));
  };

  it('has the insert on the trail when the transaction is TypeORM’s (as documented)', async () => {
    expect(await rowsOf('prb-1', true)).toEqual([{ action: 'contract_imported', entities: ['Contract:insert'] }]);
  });

  it('lists the insert on the record() row when the block was opened with SQL', async () => {
    const rows = await rowsOf('prb-2', false);
    expect(rows.map((row) => row.action)).toEqual(['contract_imported']);
    expect(rows.flatMap((row) => row.entities)).toEqual(['Contract:insert']);
  });
});
