// A function or procedure with an SQL-standard body (`CREATE FUNCTION f() … BEGIN ATOMIC SELECT 1;
// END`) is one statement to PostgreSQL: the `;` inside the body ends no statement and the `END`
// that closes it is no COMMIT. Sent through TypeORM inside a request's transaction, it leaves the
// record() row the request's only row, the committed save listed and a rolled-back one untraced
// (docs/GUIDE.md, "Atomic audit" and the diffs' limits).
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

type Shape = 'record' | 'commit' | 'rollback';

@Controller('begin-atomic')
class BeginAtomicController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string; shape: Shape }): Promise<void> {
    try {
      await this.db.transaction(async (manager) => {
        await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Atomic Ltd' });
        if (body.shape === 'record')
          await this.audit.record({ action: 'contract_signed', entityType: 'Contract', requestId: body.tag }, { manager });
        const name = `f_${body.tag.replace(/[^a-z]/g, '_')}`;
        await manager.query(`CREATE OR REPLACE FUNCTION ${name}() RETURNS integer LANGUAGE sql BEGIN ATOMIC SELECT 1; END`);
        if (body.shape === 'rollback') throw new Error('the rest of the work fails');
      });
    } catch {
      // Answers 201 either way.
    }
  }
}

describe('an SQL-standard function body (BEGIN ATOMIC … END) sent inside a TypeORM transaction', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [BeginAtomicController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, shape: Shape) => {
    await request(app.getHttpServer()).post('/begin-atomic').set('x-request-id', tag).send({ tag, shape }).expect(201);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1', [`${tag}%`]);
    return stored.map((row) => row.title);
  };

  it('keeps the committed record() row the request’s only row', async () => {
    expect(await run('begin-atomic-record', 'record')).toEqual(['begin-atomic-record a']);
    const rows = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1', ['begin-atomic-record']);
    expect(rows.map((row) => row.action)).toEqual(['contract_signed']);
  });

  it('lists the save its transaction committed', async () => {
    expect(await run('begin-atomic-commit', 'commit')).toEqual(['begin-atomic-commit a']);
    const changes = await changesOf(db, 'begin-atomic-commit');
    expect({ entities: ((changes.entities as unknown[]) ?? []).length, entitiesOmitted: changes.entitiesOmitted ?? 0 }).toEqual({
      entities: 1,
      entitiesOmitted: 0,
    });
  });

  it('traces nothing of a save its transaction rolled back', async () => {
    expect(await run('begin-atomic-rollback', 'rollback')).toEqual([]);
    const changes = await changesOf(db, 'begin-atomic-rollback');
    expect({ entities: ((changes.entities as unknown[]) ?? []).length, entitiesOmitted: changes.entitiesOmitted ?? 0 }).toEqual({
      entities: 0,
      entitiesOmitted: 0,
    });
  });
});
