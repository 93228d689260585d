import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { auditScope, AuditService, EntityChangeSubscriber } from '../src/audit';
import { StderrCapture } from './support/stderr';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

const titles = (changes: Record<string, unknown>) =>
  ((changes.entities ?? []) as { fields?: { title?: unknown[] } }[]).map((change) => change.fields?.title?.[1]);

// Changes reach the row only once their transaction commits; record() and auditScope() rows carry them too.
describe('diffs and transactions', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { maxEntryBytes: 4096, mode: 'sync' });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('reports no change of a rolled-back transaction', async () => {
    await request(app.getHttpServer())
      .post('/contracts/refused')
      .set('x-request-id', 'tx-rollback')
      .send({ title: 'Never', counterparty: 'Nobody' })
      .expect(409);
    expect(await db.query("SELECT 1 FROM contract WHERE title = 'Never'")).toEqual([]);
    expect(await changesOf(db, 'tx-rollback')).toEqual({ body: { title: 'Never', counterparty: 'Nobody' } });
  });

  it('keeps the outer transaction’s change and drops the one rolled back to its savepoint', async () => {
    await request(app.getHttpServer())
      .post('/contracts/savepoint')
      .set('x-request-id', 'tx-savepoint')
      .send({ kept: 'Outer deal', dropped: 'Inner deal' })
      .expect(201);
    expect((await db.query<{ title: string }>("SELECT title FROM contract WHERE title LIKE '% deal'")).map((r) => r.title)).toEqual([
      'Outer deal',
    ]);
    expect(titles(await changesOf(db, 'tx-savepoint'))).toEqual(['Outer deal']);
  });

  it('puts the transaction’s changes on the row record() writes inside it, and writes no second row', async () => {
    const response = await request(app.getHttpServer())
      .post('/contracts/atomic')
      .set('x-request-id', 'tx-record')
      .send({ title: 'Atomic', counterparty: 'Acme' })
      .expect(201);
    const id = (response.body as Contract).id;
    const rows = await db.query<{ action: string; changes: Record<string, unknown> }>(
      'SELECT action, changes FROM audit_log WHERE entity_id = $1 OR request_id = $2',
      [id, 'tx-record'],
    );
    expect(rows).toEqual([
      { action: 'contract_created_atomically', changes: { entities: [expect.objectContaining({ id, op: 'insert' })] } },
    ]);
  });

  it('attaches the changes committed inside auditScope() to the log() called in it, and to no other row', async () => {
    const contracts = app.get(DataSource).getRepository(Contract);
    const audit = app.get(AuditService);
    await auditScope(async () => {
      await contracts.save(contracts.create({ title: 'Nightly', counterparty: 'Cron' }));
      await audit.log({ action: 'nightly_import', requestId: 'scope-1', changes: { source: 'sftp' } });
      await audit.log({ action: 'nightly_import_done', requestId: 'scope-2' });
    });
    expect(await changesOf(db, 'scope-1')).toEqual({
      source: 'sftp',
      entities: [
        expect.objectContaining({ type: 'Contract', op: 'insert', fields: expect.objectContaining({ title: [null, 'Nightly'] }) }),
      ],
    });
    expect(await changesOf(db, 'scope-2')).toBeNull();
    // Outside any scope or request nothing is collected.
    await contracts.save(contracts.create({ title: 'Unscoped', counterparty: 'Cron' }));
    await audit.log({ action: 'unscoped', requestId: 'scope-3' });
    expect(await changesOf(db, 'scope-3')).toBeNull();
  });

  it('counts a capture fault in status().diffFaults and says so on stderr, and the write goes ahead', async () => {
    const contracts = app.get(DataSource).getRepository(Contract);
    const audit = app.get(AuditService);
    const stderr = new StderrCapture();
    // A fault met only by the capture: the entity's exclusion list throws once when read.
    const rules = (app.get(EntityChangeSubscriber) as unknown as { rules: Map<unknown, { exclude: ReadonlySet<string> }> }).rules;
    const rule = rules.get(Contract)!;
    const exclude = rule.exclude;
    rule.exclude = {
      has: () => {
        rule.exclude = exclude;
        throw new Error('exclusions unreadable');
      },
    } as unknown as ReadonlySet<string>;
    try {
      const saved = await auditScope(async () => {
        const contract = await contracts.save(contracts.create({ title: 'Despite', counterparty: 'Fault' }));
        await audit.log({ action: 'import_with_fault', requestId: 'scope-fault' });
        return contract;
      });
      expect(await db.query('SELECT title FROM contract WHERE id = $1', [saved.id])).toEqual([{ title: 'Despite' }]);
      expect(await changesOf(db, 'scope-fault')).toEqual({ entities: [], entitiesOmitted: 1 });
      expect(audit.status().diffFaults).toBe(1);
      expect(app.get(EntityChangeSubscriber).faults).toBe(1);
      expect(stderr.of('audit.diff_failed')).toEqual([
        expect.objectContaining({ level: 'warn', entityType: 'Contract', error: { name: 'Error', message: 'exclusions unreadable' } }),
      ]);
    } finally {
      stderr.restore();
      rule.exclude = exclude;
    }
  });

  it('keeps the diffs within half of maxEntryBytes and counts the changes left out', async () => {
    const contracts = app.get(DataSource).getRepository(Contract);
    const audit = app.get(AuditService);
    await auditScope(async () => {
      for (let i = 0; i < 20; i++) await contracts.save(contracts.create({ title: `Bulk ${i} ${'x'.repeat(300)}`, counterparty: 'Bulk' }));
      await audit.log({ action: 'bulk_import', requestId: 'scope-cap' });
    });
    const changes = await changesOf(db, 'scope-cap');
    const kept = (changes.entities as unknown[]).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept + (changes.entitiesOmitted as number)).toBe(20);
    expect(changes._truncated).toBeUndefined();
    expect(Buffer.byteLength(JSON.stringify(changes.entities))).toBeLessThanOrEqual(2048);
  });
});
