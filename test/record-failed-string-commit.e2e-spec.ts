// Inside a TypeORM transaction, after a record(), one string whose COMMIT runs and whose next
// statement fails (`COMMIT; SELECT 1/0`): PostgreSQL runs the statements in order up to the
// failure, so the COMMIT committed the record() row (the failing statement runs in a transaction
// of its own, and TypeORM's COMMIT after it is answered with a warning). Which statement failed is
// not known, so the row stands for the request only if another connection finds it committed when
// the request's row is decided: the record() row stays the request's only row, and a transaction
// that had failed before the string (its COMMIT answered with ROLLBACK) leaves the request its own
// row (docs/GUIDE.md, "Atomic audit"). Both hold whether `pg` reads the error and the server's
// ReadyForQuery after it (which carries the transaction status) in one piece or apart: PostgreSQL
// flushes an error on its own, and on a loaded machine the status may come a moment later.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { Contract, startDiffsApp } from './support/diffs-app';
import { AnswerFaultProxy } from './support/answer-fault-proxy';
import { TestPostgres } from './support/postgres';

@Controller('failed-commit')
class FailedCommitController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string; failedBefore?: boolean }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Batch Ltd' });
      await this.audit.record({ action: 'contract_signed', entityType: 'Contract', requestId: body.tag }, { manager });
      if (body.failedBefore) await manager.query('SELECT 1/0').catch(() => undefined);
      try {
        // The batch commits, then its follow-up statement fails.
        await manager.query('COMMIT; SELECT 1/0');
      } catch {
        // The follow-up is optional.
      }
    });
  }
}

describe.each([
  ['straight from PostgreSQL', false],
  ['with each error read before the status after it', true],
])('record() committed by a COMMIT in a string that then fails (%s)', (_how, split) => {
  let db: TestPostgres;
  let proxy: AnswerFaultProxy | undefined;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    proxy = split ? await AnswerFaultProxy.start(db.port, { delayMs: 50 }) : undefined;
    const appUrl = proxy && db.url().replace(`:${db.port}/`, `:${proxy.port}/`);
    // The look-up from another connection has writeTimeoutMs, past which the request keeps its own
    // row too: a loaded machine must not decide what this suite checks.
    app = await startDiffsApp(db, { mode: 'sync', writeTimeoutMs: 10_000 }, { controllers: [FailedCommitController], appUrl });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await proxy?.stop();
    await db?.stop();
  });

  it('keeps the committed record() row the request’s only row', async () => {
    const tag = 'failed-commit-1';
    await request(app.getHttpServer()).post('/failed-commit').set('x-request-id', tag).send({ tag }).expect(201);
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const rows = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1 ORDER BY occurred_at', [tag]);
    expect({ stored: stored.length, rows: rows.map((row) => row.action) }).toEqual({ stored: 1, rows: ['contract_signed'] });
    if (proxy) expect(proxy.errors).toBeGreaterThan(0);
  });

  it('leaves the request its own row when the transaction had failed before the string', async () => {
    const tag = 'failed-commit-2';
    await request(app.getHttpServer()).post('/failed-commit').set('x-request-id', tag).send({ tag, failedBefore: true }).expect(201);
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const rows = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1 ORDER BY occurred_at', [tag]);
    expect({ stored: stored.length, rows: rows.map((row) => row.action) }).toEqual({ stored: 0, rows: ['failed_commit.run'] });
  });
});
