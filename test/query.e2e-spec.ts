import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { AuditQueryService, AuditService } from '../src/audit';
import { TestPostgres } from './support/postgres';
import { orderedId, seed, startQueryApp } from './support/query-app';

// The read side over real HTTP and PostgreSQL: pages newest first with a cursor, the filters,
// the rows as users know them, and the guard in front of all of it.
describe('reading the trail', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const auditor = { 'x-auditor': 'yes' };
  const get = (path: string) => request(app.getHttpServer()).get(path).set(auditor);

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
    // NDA 42: five changes in November, two of them in the same millisecond; other rows around it.
    await seed(db, [
      { id: orderedId(1), occurredAt: '2026-11-01T10:00:00.000Z', entityId: '42', action: 'nda_created', userId: 'alice' },
      { id: orderedId(2), occurredAt: '2026-11-02T10:00:00.000Z', entityId: '42', userId: 'bob', changes: { title: 'New' } },
      { id: orderedId(3), occurredAt: '2026-11-02T10:00:00.000Z', entityId: '42', userId: 'alice', outcome: 'failure' },
      { id: orderedId(4), occurredAt: '2026-11-03T10:00:00.000123Z', entityId: '42', userId: 'bob' },
      { id: orderedId(5), occurredAt: '2026-11-04T10:00:00.000Z', entityId: '42', action: 'nda_deleted', userId: 'alice' },
      { id: orderedId(6), occurredAt: '2026-11-05T10:00:00.000Z', entityId: '43', userId: 'alice' },
      { id: orderedId(7), occurredAt: '2026-11-05T10:00:00.000Z', entityType: 'Invoice', entityId: '42', userId: 'alice' },
    ]);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it("pages one entity's history newest first, each row once, with a cursor", async () => {
    const first = await get('/audit/entities/NDA/42?limit=2').expect(200);
    expect(first.body.items.map((r: { id: string }) => r.id)).toEqual([orderedId(5), orderedId(4)]);
    expect(first.body.items[0]).toEqual({
      id: orderedId(5),
      occurredAt: '2026-11-04T10:00:00.000Z',
      action: 'nda_deleted',
      entityType: 'NDA',
      entityId: '42',
      userId: 'alice',
      outcome: 'success',
      ip: null,
      userAgent: null,
      requestId: null,
      changes: null,
      metadata: null,
      recordedAt: expect.any(String) as unknown,
      erasedBy: null,
    });
    const second = await get(`/audit/entities/NDA/42?limit=2&cursor=${first.body.nextCursor}`).expect(200);
    expect(second.body.items.map((r: { id: string }) => r.id)).toEqual([orderedId(3), orderedId(2)]);
    expect(second.body.items[1].changes).toEqual({ title: 'New' });
    const third = await get(`/audit/entities/NDA/42?limit=2&cursor=${second.body.nextCursor}`).expect(200);
    expect(third.body).toEqual({ items: [expect.objectContaining({ id: orderedId(1) })], nextCursor: null });
  });

  it("reads one user's time range and a search by action and outcome", async () => {
    const queries = app.get(AuditQueryService);
    const alice = await queries.byUser('alice', { from: '2026-11-02', to: '2026-11-05T10:00:00Z' });
    expect(alice.items.map((r) => r.id)).toEqual([orderedId(5), orderedId(3)]);
    expect(alice.items[0].occurredAt).toEqual(new Date('2026-11-04T10:00:00.000Z'));

    const failures = await get('/audit?outcome=failure').expect(200);
    expect(failures.body.items.map((r: { id: string }) => r.id)).toEqual([orderedId(3)]);
    const invoices = await get('/audit?entityType=Invoice&action=nda_updated').expect(200);
    expect(invoices.body.items.map((r: { id: string }) => r.id)).toEqual([orderedId(7)]);
    const range = await get('/audit?userId=bob&from=2026-11-03T00:00:00%2B01:00').expect(200);
    expect(range.body.items.map((r: { id: string }) => r.id)).toEqual([orderedId(4)]);
  });

  it.each([
    ['/audit?from=yesterday', 'from'],
    ['/audit?from=2026-02-31', 'from'],
    ['/audit?to=2026-11-01T10:00:00', 'to'],
    ['/audit?from=2026-11-02&to=2026-11-01', 'to'],
    ['/audit?cursor=not-a-cursor', 'cursor'],
    [`/audit?cursor=${Buffer.from('v1:12:x').toString('base64url')}`, 'cursor'],
    ['/audit?limit=0', 'limit'],
    ['/audit?limit=501', 'limit'],
    ['/audit?limit=ten', 'limit'],
    ['/audit?outcome=maybe', 'outcome'],
    ['/audit?userId=a&userId=b', 'userId'],
    ['/audit?sort=asc', 'sort'],
    ['/audit/export?format=xml', 'format'],
    ['/audit/export?from=2026-13-01', 'from'],
    ['/audit/entities/NDA/42?cursor=%00', 'cursor'],
  ])('answers %s with 400 naming "%s"', async (path, parameter) => {
    const response = await get(path).expect(400);
    expect(response.body).toMatchObject({ statusCode: 400, code: 'AUDIT_INVALID_QUERY' });
    expect(response.body.message).toContain(`query parameter "${parameter}"`);
  });

  it('refuses every route to a request the guard does not let through', async () => {
    for (const path of ['/audit', '/audit/entities/NDA/42', '/audit/export']) {
      await request(app.getHttpServer()).get(path).expect(403);
    }
  });

  it('answers 503 while the database is down, without touching the write path, and reads again after', async () => {
    const audit = app.get(AuditService);
    const before = audit.status();
    await db.kill();
    try {
      for (const path of ['/audit/entities/NDA/42', '/audit?userId=alice', '/audit/export']) {
        const response = await get(path).expect(503);
        expect(response.body).toMatchObject({ statusCode: 503, code: 'AUDIT_READ_FAILED' });
        expect(response.body.message).not.toContain(db.password);
      }
      expect(audit.status()).toEqual(before);
    } finally {
      await db.restart();
    }
    await get('/audit/entities/NDA/42').expect(200);
  });
});
