import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { AuditService } from '../src/audit';
import { runErase } from '../src/audit/privacy/erase-command';
import { startExampleApp } from './support/app';
import { parseCsv } from './support/csv';
import { TestPostgres } from './support/postgres';

const TOKEN = 'auditor-token-for-the-e2e-suite';
const PSEUDONYM_KEY = 'a-pseudonym-key-of-at-least-32-characters';

// After an erasure, the read side (history, search, export, the example app's /ndas/:id/history)
// shows `[ERASED]` where a personal value was, never null or an empty string; values not erased
// are put back where they were logged. audit-erase does the same from the command line.
describe('reads and export after erasure', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let id: string;

  type Row = { action: string; userId: string | null; changes: { entities: { fields: Record<string, unknown> }[] } };
  const history = async () =>
    (await request(app.getHttpServer()).get(`/ndas/${id}/history`).set('x-auditor-token', TOKEN).expect(200)).body as { items: Row[] };
  const summary = (items: Row[]) => items.map((r) => [r.action, r.userId, r.changes.entities[0].fields.counterparty]);
  const erase = async (...args: string[]) => {
    const out: string[] = [];
    const code = await runErase(
      ['--url', db.url(), ...args],
      { AUDIT_PRIVACY_PSEUDONYM_KEY: PSEUDONYM_KEY },
      {
        out: (line) => out.push(line),
        err: (line) => out.push(line),
      },
    );
    return { code, out };
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startExampleApp({
      AUDIT_DATABASE_URL: undefined,
      AUDIT_MODE: 'sync',
      AUDIT_SPOOL_DIR: undefined,
      AUDIT_HTTP: undefined,
      SENTRY_DSN: undefined,
      DATABASE_URL: db.url(),
      AUDIT_HTTP_TOKEN: TOKEN,
      AUDIT_PRIVACY_PERSONAL_DATA: 'changes.body.counterparty,changes.entities[].fields.counterparty',
      AUDIT_PRIVACY_PSEUDONYM_KEY: PSEUDONYM_KEY,
    });
    const server = app.getHttpServer();
    const created = await request(server).post('/ndas').set('x-user-id', 'alice').send({ title: 'Old', counterparty: 'Acme' }).expect(201);
    id = (created.body as { id: string }).id;
    await request(server).patch(`/ndas/${id}`).set('x-user-id', 'bob').send({ counterparty: 'Umbrella' }).expect(200);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    delete process.env.AUDIT_PRIVACY_PERSONAL_DATA;
    delete process.env.AUDIT_PRIVACY_PSEUDONYM_KEY;
    await db?.stop();
  });

  it('puts the values kept apart back where they were logged', async () => {
    const stored = await db.query<{ changes: string }>(`SELECT changes::text AS changes FROM audit_log WHERE entity_id = $1`, [id]);
    expect(stored.map((r) => r.changes).join()).not.toContain('Acme');
    expect(summary((await history()).items)).toEqual([
      ['nda_updated', 'bob', ['Acme', 'Umbrella']],
      ['nda_created', 'alice', [null, 'Acme']],
    ]);
  });

  it('audit-erase lists what a dry run would change, then erases a user as actor', async () => {
    const dry = await erase('--user', 'bob', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out[0]).toMatch(/^would erase [0-9a-f-]{36} \d{4}-/);
    expect(dry.out.at(-1)).toMatch(/^audit-erase: 1 rows would be erased, 0 already erased, 0 not erasable .*; dry run: nothing changed$/);
    expect(summary((await history()).items)[0]).toEqual(['nda_updated', 'bob', ['Acme', 'Umbrella']]);

    const done = await erase('--user', 'bob', '--by', 'dpo', '--reason', 'request #7');
    expect(done.code).toBe(0);
    expect(done.out.at(-1)).toMatch(
      /^audit-erase: 1 rows erased, 0 already erased, 0 not erasable .*; erasure [0-9a-f-]{36} recorded by entry /,
    );
    expect(summary((await history()).items)).toEqual([
      ['nda_updated', '[ERASED]', '[ERASED]'],
      ['nda_created', 'alice', [null, 'Acme']],
    ]);
  }, 30_000);

  it('shows [ERASED] in history, search and both export formats after an entity is erased', async () => {
    expect(await app.get(AuditService).erase({ entityType: 'NDA', entityId: id })).toMatchObject({ erased: 1, alreadyErased: 1 });
    expect(summary((await history()).items)).toEqual([
      ['nda_updated', '[ERASED]', '[ERASED]'],
      ['nda_created', '[ERASED]', '[ERASED]'],
    ]);
    const server = app.getHttpServer();
    const search = await request(server).get(`/audit?entityType=NDA&entityId=${id}`).set('x-auditor-token', TOKEN).expect(200);
    expect(summary((search.body as { items: Row[] }).items)).toEqual(summary((await history()).items));
    const ndjson = await request(server).get(`/audit/export?format=ndjson&entityId=${id}`).set('x-auditor-token', TOKEN).expect(200);
    const lines = ndjson.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Row);
    expect(summary(lines)).toEqual([
      ['nda_created', '[ERASED]', '[ERASED]'],
      ['nda_updated', '[ERASED]', '[ERASED]'],
    ]);
    const csv = await request(server).get(`/audit/export?format=csv&entityId=${id}`).set('x-auditor-token', TOKEN).expect(200);
    expect(csv.text).not.toMatch(/Acme|Umbrella|alice|bob/);
    // Per row: the user, the IP, the counterparty in the request body and in the entity's diff.
    expect(csv.text.match(/\[ERASED\]/g)).toHaveLength(8);
  }, 30_000);

  it('tells an erased row from one whose values were logged as the text [ERASED]', async () => {
    const server = app.getHttpServer();
    const create = async (user: string, counterparty: string) =>
      ((await request(server).post('/ndas').set('x-user-id', user).send({ title: 'T', counterparty }).expect(201)).body as { id: string })
        .id;
    const literal = await create('[ERASED]', '[ERASED]');
    const carol = await create('carol', 'Initech');
    const { erasureId } = await app.get(AuditService).erase({ userId: 'carol' });

    type Read = { id: string; userId: string | null; erasedBy: string | null; changes: Row['changes'] };
    const read = async (path: string) =>
      ((await request(server).get(path).set('x-auditor-token', TOKEN).expect(200)).body as { items: Read[] }).items;
    const shown = (items: Read[]) => items.map((r) => [r.userId, r.changes.entities[0].fields.counterparty, r.erasedBy]);
    // Both rows read `[ERASED]`; only the erased one names the erasure that took its values.
    expect(shown(await read(`/audit?entityId=${literal}`))).toEqual([['[ERASED]', [null, '[ERASED]'], null]]);
    expect(shown(await read(`/audit?entityId=${carol}`))).toEqual([['[ERASED]', '[ERASED]', erasureId]]);
    expect(shown(await read(`/ndas/${literal}/history`))).toEqual([['[ERASED]', [null, '[ERASED]'], null]]);
    const [carolRow] = await read(`/audit?entityId=${carol}`);
    expect(shown(await read(`/audit/rows/${carolRow.id}`))).toEqual([['[ERASED]', '[ERASED]', erasureId]]);

    const exported = async (format: string, entityId: string) =>
      (await request(server).get(`/audit/export?format=${format}&entityId=${entityId}`).set('x-auditor-token', TOKEN).expect(200)).text;
    expect((JSON.parse(await exported('ndjson', literal)) as Read).erasedBy).toBeNull();
    expect((JSON.parse(await exported('ndjson', carol)) as Read).erasedBy).toBe(erasureId);
    const csvColumn = async (entityId: string) => {
      const [header, record] = parseCsv(await exported('csv', entityId));
      return record[header.indexOf('erasedBy')];
    };
    expect(await csvColumn(literal)).toBe('');
    expect(await csvColumn(carol)).toBe(erasureId);
  }, 30_000);
});
