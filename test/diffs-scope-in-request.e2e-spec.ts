import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { auditScope, AuditService } from '../src/audit';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// `auditScope()` (src/audit/audit-context.ts, docs/GUIDE.md): inside an HTTP request the scope is
// the request's. A change committed in it goes to the request's row, a `record()` row committed in
// it stands for the request, a `log()` in it leaves the changes to the request's row; work still
// running in it once the request's row is made is a scope of its own again. Inside another scope,
// it joins that one.

/** Resolved by the test once the response is in: work the handler left running goes on then. */
let responded: () => void = () => undefined;

@Controller()
class ScopedController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post('scoped-contracts')
  async create(@Body() body: { title: string }): Promise<{ id: string }> {
    const repo = this.db.getRepository(Contract);
    const saved = await auditScope(() => repo.save(repo.create({ title: body.title, counterparty: 'Scoped Ltd' })));
    return { id: saved.id };
  }

  @Post('scoped-records')
  async record(@Body() body: { title: string }): Promise<void> {
    await auditScope(() =>
      this.db.transaction(async (manager) => {
        const saved = await manager.save(manager.create(Contract, { title: body.title, counterparty: 'Scoped Ltd' }));
        await this.audit.record({ action: 'contract_recorded', entityType: 'Contract', entityId: saved.id }, { manager });
      }),
    );
  }

  @Post('scoped-logs')
  async log(@Body() body: { title: string; tag: string }): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await auditScope(async () => {
      await repo.save(repo.create({ title: body.title, counterparty: 'Scoped Ltd' }));
      await this.audit.log({ action: 'contract_noted', requestId: body.tag });
    });
  }

  @Post('scoped-later')
  later(@Body() body: { title: string; tag: string }): { ok: true } {
    const repo = this.db.getRepository(Contract);
    const after = new Promise<void>((resolve) => (responded = resolve));
    void auditScope(async () => {
      await after;
      await repo.save(repo.create({ title: body.title, counterparty: 'Scoped Ltd' }));
      await this.audit.log({ action: 'contract_imported_later', requestId: body.tag });
    });
    return { ok: true };
  }
}

describe('auditScope() inside an HTTP request, and inside another scope', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [ScopedController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it("puts a change committed inside the scope on the request's row", async () => {
    const response = await request(app.getHttpServer())
      .post('/scoped-contracts')
      .set('x-request-id', 'scope-req-1')
      .send({ title: 'Scoped' });
    expect(response.status).toBe(201);
    const changes = await changesOf(db, 'scope-req-1');
    expect(changes.entities).toEqual([
      expect.objectContaining({ type: 'Contract', op: 'insert', id: (response.body as { id: string }).id }),
    ]);
  });

  it('writes no second row for a request whose record() row committed inside the scope', async () => {
    const response = await request(app.getHttpServer())
      .post('/scoped-records')
      .set('x-request-id', 'scope-req-2')
      .send({ title: 'Recorded' });
    expect(response.status).toBe(201);
    const rows = await db.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE request_id = 'scope-req-2' OR action = 'contract_recorded'`,
    );
    expect(rows).toEqual([{ action: 'contract_recorded' }]);
  });

  it("leaves the changes to the request's row when log() is called inside the scope", async () => {
    await request(app.getHttpServer())
      .post('/scoped-logs')
      .set('x-request-id', 'scope-req-3')
      .send({ title: 'Noted', tag: 'scope-log-3' })
      .expect(201);
    expect((await changesOf(db, 'scope-req-3')).entities).toEqual([expect.objectContaining({ type: 'Contract', op: 'insert' })]);
    expect(await changesOf(db, 'scope-log-3')).toBeNull();
  });

  it('keeps for its own log() what a scope still running after the response commits', async () => {
    await request(app.getHttpServer())
      .post('/scoped-later')
      .set('x-request-id', 'scope-req-4')
      .send({ title: 'Later', tag: 'scope-log-4' })
      .expect(201);
    responded();
    expect((await changesOf(db, 'scope-log-4')).entities).toEqual([
      expect.objectContaining({ type: 'Contract', op: 'insert', fields: expect.objectContaining({ title: [null, 'Later'] }) }),
    ]);
    expect((await changesOf(db, 'scope-req-4')).entities).toBeUndefined();
  });

  it("joins an enclosing scope outside HTTP: the inner scope's change reaches the outer scope's log()", async () => {
    const repo = app.get(DataSource).getRepository(Contract);
    const audit = app.get(AuditService);
    await auditScope(async () => {
      await auditScope(() => repo.save(repo.create({ title: 'Nested', counterparty: 'Cron' })));
      await audit.log({ action: 'nested_import', requestId: 'scope-nested-5' });
    });
    expect((await changesOf(db, 'scope-nested-5')).entities).toEqual([
      expect.objectContaining({ type: 'Contract', op: 'insert', fields: expect.objectContaining({ title: [null, 'Nested'] }) }),
    ]);
  });
});
