import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { TestPostgres } from './support/postgres';
import { orderedId, seed, startQueryApp } from './support/query-app';

const cursorOf = (text: string) => Buffer.from(text).toString('base64url');
const ID = '00000000-0000-7000-8000-000000000001';

// docs/GUIDE.md "Reading the trail": instants are ISO 8601 "with fractions to the microsecond"
// (audit-query.input.ts), `from` inclusive and `to` exclusive; bad input answers 400 with a stable
// code, never a 500, and a read never returns a row outside its filter.
describe('probe: hostile and exact query input', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const get = (path: string) => request(app.getHttpServer()).get(path).set('x-auditor', 'yes');

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
    // Rows a microsecond apart inside one millisecond (the column keeps microseconds).
    await seed(db, [
      { id: orderedId(1), occurredAt: '2026-11-02T10:00:00.000100Z', entityId: 'us', action: 'at_100us' },
      { id: orderedId(2), occurredAt: '2026-11-02T10:00:00.000400Z', entityId: 'us', action: 'at_400us' },
      { id: orderedId(3), occurredAt: '2026-11-02T10:00:00.000700Z', entityId: 'us', action: 'at_700us' },
    ]);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('honours from and to given to the microsecond: no row before from, none at or after to', async () => {
    const actions = async (query: string) =>
      ((await get(`/audit?entityId=us&${query}`).expect(200)).body as { items: { action: string }[] }).items.map((r) => r.action);
    const exported = async (query: string) =>
      (await get(`/audit/export?entityId=us&${query}`).expect(200)).text
        .trim()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as { action: string }).action);
    expect({
      fromPage: await actions('from=2026-11-02T10:00:00.000500Z'),
      toPage: await actions('from=2026-11-02T09:00:00Z&to=2026-11-02T10:00:00.000500Z'),
      fromExport: await exported('from=2026-11-02T10:00:00.000500Z'),
      toExport: await exported('from=2026-11-02T09:00:00Z&to=2026-11-02T10:00:00.000500Z'),
    }).toEqual({
      fromPage: ['at_700us'],
      toPage: ['at_400us', 'at_100us'],
      fromExport: ['at_700us'],
      toExport: ['at_100us', 'at_400us'],
    });
  });

  it.each([
    ['/audit?limit=0'],
    ['/audit?limit=501'],
    ['/audit?limit=1e2'],
    ['/audit?limit=%2050'],
    ['/audit?limit='],
    ['/audit?outcome=success&outcome=failure'],
    ['/audit?userId[$ne]=x'],
    ['/audit?constructor=x'],
    ['/audit?from=2026-02-29'],
    ['/audit?from=2026-01-01T24:00:00Z'],
    ['/audit?from=2026-01-01T00:00:00.1234567Z'],
    ['/audit?from=0001-01-01T00:30:00%2B01:00'],
    ['/audit?from=2026-01-01&to=2026-01-01'],
    ['/audit?userId=' + 'x'.repeat(501)],
    ['/audit?entityId=a%00b'],
    ['/audit?cursor='],
    ['/audit?cursor=' + cursorOf(`v1:99999999999999999999:${ID}`)],
    ['/audit?cursor=' + cursorOf(`v1:9224318016000000000:${ID}`)],
    ['/audit?cursor=' + cursorOf(`v1:-210866803200000001:${ID}`)],
    ['/audit?cursor=' + cursorOf(`v1:1:${ID.replace('0000-7000', '0000-7ABC')}`)],
    ['/audit?cursor=' + cursorOf(`v1:1:${ID}:x`)],
    ['/audit?cursor=' + cursorOf(`v2:1:${ID}`)],
    ['/audit/export?format=CSV'],
    ['/audit/export?limit=5'],
    ['/audit/rows/not-a-uuid'],
    ['/audit/rows/' + ID + '?x=1'],
    ['/audit/entities/NDA/a%00b'],
    ['/audit/entities/NDA/' + 'y'.repeat(501)],
    ['/audit/entities/NDA/x?limit=9999'],
  ])('answers 400 AUDIT_INVALID_QUERY to %s', async (path) => {
    const response = await get(path);
    expect({ status: response.status, code: (response.body as { code?: string }).code }).toEqual({
      status: 400,
      code: 'AUDIT_INVALID_QUERY',
    });
  });

  it.each([
    ['/audit?cursor=' + cursorOf(`v1:9224318015999999999:${ID}`)],
    ['/audit?cursor=' + cursorOf(`v1:-210866803200000000:${ID}`)],
    ['/audit?cursor=' + cursorOf(`v1:-0:${ID}`)],
    ['/audit?cursor=' + cursorOf(`v1:infinity:${ID}`)],
    ['/audit?cursor=' + cursorOf(`v1:-infinity:${ID}`)],
    ['/audit?entityId=' + encodeURIComponent("'; DROP TABLE audit_log; --\\")],
    ['/audit?userId=' + encodeURIComponent('\\x27 OR 1=1')],
    ['/audit?from=0001-01-01&to=9999-12-31T23:59:59.999999Z'],
    ['/audit/entities/' + encodeURIComponent("N'DA") + '/' + encodeURIComponent('a\\b')],
  ])('answers 200 to %s', async (path) => {
    expect((await get(path)).status).toBe(200);
  });

  it('answers a malformed percent-encoding in a path parameter with a 400, not a 500', async () => {
    expect((await get('/audit/entities/NDA/%E0%A4%A')).status).toBe(400);
    expect((await get('/audit/rows/%ZZ')).status).toBe(400);
  });
});
