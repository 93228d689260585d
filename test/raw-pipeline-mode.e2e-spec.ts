// With `pg`'s pipeline mode (`extra: { pipeline: true }`), queries made together on one runner are
// sent at once, and their answers may be read together: the status `pg` keeps after them may be a
// later query's. The follower then reads no status (as with a `pg` that keeps none) and follows
// the statements alone: `COMMIT; SELECT 1/0` beside a `BEGIN` still counts the change its COMMIT
// committed (docs/GUIDE.md, diffs section).
import { Body, Controller, type INestApplication, Module, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule } from '../src/audit';
import { AnswerFaultProxy } from './support/answer-fault-proxy';
import { partitionsChecked } from './support/app';
import { AUDIT_SOURCE, changesOf, Contract, Note, Tag } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

let proxy: AnswerFaultProxy;

@Controller('pipelined')
class PipelinedController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string; gathered: boolean; beside: string }): Promise<void> {
    const runner = this.db.createQueryRunner();
    try {
      await runner.query('BEGIN');
      await runner.manager
        .createQueryBuilder()
        .insert()
        .into(Contract)
        .values({ title: `${body.tag} a`, counterparty: 'Pipe Ltd' })
        .execute();
      // The answers to both reach the app in one read, or as PostgreSQL flushes them.
      if (body.gathered) proxy.gather(2);
      await Promise.all([runner.query('COMMIT; SELECT 1/0').catch(() => undefined), runner.query(body.beside)]);
      await runner.query('ROLLBACK');
    } finally {
      await runner.release();
    }
  }
}

describe('queries pipelined on one runner, the first failing after its COMMIT', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    proxy = await AnswerFaultProxy.start(db.port, 'pass');
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url().replace(`:${db.port}/`, `:${proxy.port}/`),
          entities: [Contract, Tag, Note],
          synchronize: true,
          extra: { pipeline: true },
        }),
        TypeOrmModule.forRoot({
          name: AUDIT_SOURCE,
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsTableName: 'audit_migrations',
          migrationsRun: true,
        }),
        AuditModule.forRootAsync({ dataSource: AUDIT_SOURCE, useFactory: () => ({ mode: 'sync' as const, writeTimeoutMs: 10_000 }) }),
      ],
      controllers: [PipelinedController],
    })
    class PipelinedAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [PipelinedAppModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
    await partitionsChecked(app);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await proxy?.stop();
    await db?.stop();
  });

  async function run(tag: string, gathered: boolean, beside = 'BEGIN') {
    await request(app.getHttpServer()).post('/pipelined').set('x-request-id', tag).send({ tag, gathered, beside }).expect(201);
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const changes = (await changesOf(db, tag)) as { entities?: unknown[]; entitiesOmitted?: number };
    return { stored: stored.length, listedOrCounted: (changes.entities?.length ?? 0) + (changes.entitiesOmitted ?? 0) };
  }

  it('counts the change its COMMIT committed, the answers read as PostgreSQL flushes them', async () => {
    expect(await run('pipelined-apart', false)).toEqual({ stored: 1, listedOrCounted: 1 });
  });

  it('counts the change its COMMIT committed, both answers read at once, the second query changing no status', async () => {
    expect(await run('pipelined-select', true, 'SELECT 1')).toEqual({ stored: 1, listedOrCounted: 1 });
  });

  it('counts the change its COMMIT committed, both answers read at once', async () => {
    expect(await run('pipelined-together', true)).toEqual({ stored: 1, listedOrCounted: 1 });
  });
});
