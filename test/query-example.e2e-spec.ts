import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';

const TOKEN = 'auditor-token-for-the-e2e-suite';
const ENV = {
  AUDIT_DATABASE_URL: undefined,
  AUDIT_MODE: 'sync',
  AUDIT_SPOOL_DIR: undefined,
  AUDIT_HTTP: undefined,
  SENTRY_DSN: undefined,
};

// The example app serves the trail to auditors only: its own guard (the x-auditor-token header
// against AUDIT_HTTP_TOKEN) in front of GET /audit… and GET /ndas/:id/history.
describe('the example app reading its trail', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startExampleApp({ ...ENV, DATABASE_URL: db.url(), AUDIT_HTTP_TOKEN: TOKEN });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('reads back an NDA created, patched twice and deleted as its history, newest first', async () => {
    const server = app.getHttpServer();
    const created = await request(server).post('/ndas').set('x-user-id', 'alice').send({ title: 'Old', counterparty: 'Acme' }).expect(201);
    const id = (created.body as { id: string }).id;
    await request(server).patch(`/ndas/${id}`).set('x-user-id', 'bob').send({ title: 'New' }).expect(200);
    await request(server).patch(`/ndas/${id}`).set('x-user-id', 'bob').send({ counterparty: 'Umbrella' }).expect(200);
    await request(server).delete(`/ndas/${id}`).set('x-user-id', 'alice').expect(204);

    const history = await request(server).get(`/ndas/${id}/history`).set('x-auditor-token', TOKEN).expect(200);
    expect(history.body.nextCursor).toBeNull();
    expect(
      history.body.items.map((r: { action: string; userId: string; entityId: string; outcome: string }) => [
        r.action,
        r.userId,
        r.entityId,
        r.outcome,
      ]),
    ).toEqual([
      ['nda_deleted', 'alice', id, 'success'],
      ['nda_updated', 'bob', id, 'success'],
      ['nda_updated', 'bob', id, 'success'],
      ['nda_created', 'alice', id, 'success'],
    ]);
    // Each row carries what changed, from what to what.
    const nda = (op: string, fields: Record<string, unknown[]>) => [{ type: 'NDA', id, op, fields }];
    expect(history.body.items.map((r: { changes: { entities: unknown } }) => r.changes.entities)).toEqual([
      nda('remove', { id: [id, null], title: ['New', null], counterparty: ['Umbrella', null] }),
      nda('update', { counterparty: ['Acme', 'Umbrella'] }),
      nda('update', { title: ['Old', 'New'] }),
      nda('insert', { id: [null, id], title: [null, 'Old'], counterparty: [null, 'Acme'] }),
    ]);
    const same = await request(server).get(`/audit/entities/NDA/${id}`).set('x-auditor-token', TOKEN).expect(200);
    expect(same.body).toEqual(history.body);
    const page = await request(server)
      .get(`/ndas/${id}/history?cursor=${history.body.items[0].id as string}`)
      .set('x-auditor-token', TOKEN);
    expect(page.status).toBe(400);
  });

  it.each(['/audit', '/audit/entities/NDA/42', '/audit/export?format=csv', '/ndas/0193a1c2-0000-7000-8000-000000000001/history'])(
    'answers %s with 401 without the token and 403 with another one, in the header or as the password of HTTP Basic',
    async (path) => {
      const server = app.getHttpServer();
      const missing = await request(server).get(path).expect(401);
      expect(missing.body.message).toBe('Send the auditor token in the x-auditor-token header, or as the password of HTTP Basic');
      // A browser asks for it: the audit viewer's auditors type the token into that prompt.
      expect(missing.headers['www-authenticate']).toBe('Basic realm="audit", charset="UTF-8"');
      await request(server).get(path).set('x-auditor-token', `${TOKEN}-not`).expect(403);
      await request(server).get(path).set('x-auditor-token', TOKEN).expect(200);
      const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      await request(server).get(path).set('authorization', basic('anyone', TOKEN)).expect(200);
      await request(server)
        .get(path)
        .set('authorization', basic('anyone', `${TOKEN}-not`))
        .expect(403);
      await request(server).get(path).set('authorization', basic(TOKEN, '')).expect(401);
    },
  );

  it('serves the trail to nobody when AUDIT_HTTP_TOKEN is not set', async () => {
    const closed = await startExampleApp({ ...ENV, DATABASE_URL: db.url(), AUDIT_HTTP_TOKEN: undefined });
    try {
      const response = await request(closed.getHttpServer()).get('/audit').set('x-auditor-token', TOKEN).expect(403);
      expect(response.body.message).toBe('Reading the audit trail is off: AUDIT_HTTP_TOKEN is not set');
    } finally {
      await closed.close();
    }
  });
});
