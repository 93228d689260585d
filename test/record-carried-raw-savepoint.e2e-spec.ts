import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('record-step')
class RecordStepController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string; typeorm: boolean }): Promise<void> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    const insert = (title: string) =>
      runner.manager.createQueryBuilder().insert().into(Contract).values({ title, counterparty: 'Step Ltd' }).execute();
    try {
      if (body.typeorm) await runner.startTransaction();
      else await runner.query('BEGIN');
      await insert(`${body.tag} kept`);
      await runner.query('SAVEPOINT step');
      await insert(`${body.tag} undone`);
      await this.audit.record({ action: 'step_recorded', entityType: 'Step', requestId: body.tag }, { manager: runner.manager });
      // The step is abandoned: its insert and the record() row are rolled back; what came before commits.
      await runner.query('ROLLBACK TO SAVEPOINT step');
      if (body.typeorm) await runner.commitTransaction();
      else await runner.query('COMMIT');
    } finally {
      await runner.release();
    }
  }
}

// docs/GUIDE.md: a record() row carries the uncommitted changes of its transaction, and they
// commit or roll back with it; "when the row's savepoint rolls back and the transaction goes on,
// the changes it carried from outside that savepoint go back to the transaction, for the
// request's own row; the savepoint's own reach no row". That holds for a SAVEPOINT sent as SQL,
// in a TypeORM transaction and in a block opened with BEGIN as SQL.
describe('record() in a savepoint sent as SQL and rolled back: the changes made before it reach the request row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [RecordStepController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const trailOf = async (tag: string, typeorm: boolean) => {
    await request(app.getHttpServer()).post('/record-step').set('x-request-id', tag).send({ tag, typeorm }).expect(201);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1', [`${tag} %`]);
    const rows = await db.query<{ action: string; changes: { entities?: { after?: { title?: string } }[] } | null }>(
      'SELECT action, changes FROM audit_log WHERE request_id = $1',
      [tag],
    );
    return {
      stored: stored.map((row) => row.title),
      rows: rows.map((row) => ({
        recorded: row.action === 'step_recorded',
        listed: (row.changes?.entities ?? []).map((e) => e.after?.title),
      })),
    };
  };

  it('in a TypeORM transaction', async () => {
    expect(await trailOf('step-typeorm', true)).toEqual({
      stored: ['step-typeorm kept'],
      rows: [{ recorded: false, listed: ['step-typeorm kept'] }],
    });
  });

  it('in a block opened with BEGIN as SQL', async () => {
    expect(await trailOf('step-raw', false)).toEqual({
      stored: ['step-raw kept'],
      rows: [{ recorded: false, listed: ['step-raw kept'] }],
    });
  });
});
