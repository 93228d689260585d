// PROMISE (docs/GUIDE.md, "Atomic audit"): "once that transaction has committed, the interceptor
// writes no second row for that request"; (Diffs) "A string that fails is taken to have run up to
// its last COMMIT or ROLLBACK before its last statement"; README: exactly one row per request.
//
// BREAK: inside a TypeORM transaction, after a record(), the handler sends one string whose COMMIT
// runs and whose next statement fails (`COMMIT; SELECT 1/0`). PostgreSQL committed the record()
// row. queryFailed() applies the COMMIT with an unknown answer: transactionEndedBySql(undefined)
// counts the held changes and forgets the record() row without marking its context, although the
// failure came after the COMMIT and the transaction was not failed before it (the module saw every
// statement of it succeed). The interceptor then writes the request's own row beside it.
//
// OBSERVED: the contract is stored, and the request has two rows: ['contract_signed',
// 'failed_commit.run'] (expected ['contract_signed']).
//
// SEVERITY: low-medium (a duplicate row for one request; needs a COMMIT and a failing statement
// in one string inside a TypeORM transaction).
//
// FIX GUESS: a COMMIT in a failed string, inside a transaction whose statements all succeeded so
// far, was answered COMMIT (only a transaction already failed answers ROLLBACK): take it as
// COMMIT then; or settle its record() rows as for an unreported block, by a look-up from another
// connection (committedElsewhere) when the request's row is decided.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuditService } from '../src/audit';
import { Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('failed-commit')
class FailedCommitController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Batch Ltd' });
      await this.audit.record({ action: 'contract_signed', entityType: 'Contract', requestId: body.tag }, { manager });
      try {
        // The batch commits, then its follow-up statement fails.
        await manager.query('COMMIT; SELECT 1/0');
      } catch {
        // The follow-up is optional.
      }
    });
  }
}

describe('record() committed by a COMMIT in a string that then fails', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [FailedCommitController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('keeps the committed record() row the request’s only row', async () => {
    const tag = 'failed-commit-1';
    await request(app.getHttpServer()).post('/failed-commit').set('x-request-id', tag).send({ tag }).expect(201);
    const stored = await db.query('SELECT 1 FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const rows = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1 ORDER BY occurred_at', [tag]);
    expect({ stored: stored.length, rows: rows.map((row) => row.action) }).toEqual({ stored: 1, rows: ['contract_signed'] });
  });
});
