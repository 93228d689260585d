import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { auditScope, AuditService } from '../src/audit';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// Probe (attacker A3). `auditScope()`'s JSDoc (src/audit/audit-context.ts, the public API): "changes
// of audited entities committed inside it are attached to the next `AuditService.log()` (or
// `record()`) called inside it. Inside an HTTP request they go to the request's row instead."
// A service written for jobs wraps its work in auditScope(); called from a request, the change
// it commits must reach the request's row, not vanish with the scope; and a `record()` row committed
// inside it stands for the request (docs/GUIDE.md: "once that transaction has committed, the
// interceptor writes no second row for that request").

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
}

describe('probe: auditScope() inside an HTTP request', () => {
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
      .set('x-request-id', 'probe-scope-1')
      .send({ title: 'Scoped' });
    expect(response.status).toBe(201);
    const changes = await changesOf(db, 'probe-scope-1');
    expect(changes.entities).toEqual([
      expect.objectContaining({ type: 'Contract', op: 'insert', id: (response.body as { id: string }).id }),
    ]);
  });

  it('writes no second row for a request whose record() row committed inside the scope', async () => {
    const response = await request(app.getHttpServer())
      .post('/scoped-records')
      .set('x-request-id', 'probe-scope-2')
      .send({ title: 'Recorded' });
    expect(response.status).toBe(201);
    const rows = await db.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE request_id = 'probe-scope-2' OR action = 'contract_recorded'`,
    );
    expect(rows).toEqual([{ action: 'contract_recorded' }]);
  });
});
