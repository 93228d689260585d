import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';

// The example app's NDA history, read straight from audit_log: the issue's "an NDA created,
// patched twice and deleted" reads back as four rows whose diffs tell the whole story.
describe('the example app: an NDA’s history with diffs', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startExampleApp({ DATABASE_URL: db.url(), AUDIT_DATABASE_URL: undefined, AUDIT_MODE: 'sync', SENTRY_DSN: undefined });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('an NDA created, patched twice and deleted reads back as its full history', async () => {
    const server = app.getHttpServer();
    const created = await request(server)
      .post('/ndas')
      .set('x-user-id', 'alice')
      .send({ title: 'Mutual NDA', counterparty: 'Acme' })
      .expect(201);
    const id = (created.body as { id: string }).id;
    await request(server).patch(`/ndas/${id}`).set('x-user-id', 'bob').send({ title: 'Mutual NDA v2' }).expect(200);
    await request(server)
      .patch(`/ndas/${id}`)
      .set('x-user-id', 'bob')
      .send({ title: 'Mutual NDA v3', counterparty: 'Acme Corp' })
      .expect(200);
    await request(server).delete(`/ndas/${id}`).set('x-user-id', 'carol').expect(204);

    const rows = await db.query(
      `SELECT action, user_id, entity_type, changes FROM audit_log WHERE entity_id = $1 ORDER BY occurred_at, id`,
      [id],
    );
    const nda = (op: string, fields: Record<string, unknown[]>) => [{ type: 'NDA', id, op, fields }];
    expect(rows).toEqual([
      {
        action: 'nda_created',
        user_id: 'alice',
        entity_type: 'NDA',
        changes: {
          body: { title: 'Mutual NDA', counterparty: 'Acme' },
          entities: nda('insert', { id: [null, id], title: [null, 'Mutual NDA'], counterparty: [null, 'Acme'] }),
        },
      },
      {
        action: 'nda_updated',
        user_id: 'bob',
        entity_type: 'NDA',
        changes: { body: { title: 'Mutual NDA v2' }, entities: nda('update', { title: ['Mutual NDA', 'Mutual NDA v2'] }) },
      },
      {
        action: 'nda_updated',
        user_id: 'bob',
        entity_type: 'NDA',
        changes: {
          body: { title: 'Mutual NDA v3', counterparty: 'Acme Corp' },
          entities: nda('update', { title: ['Mutual NDA v2', 'Mutual NDA v3'], counterparty: ['Acme', 'Acme Corp'] }),
        },
      },
      {
        action: 'nda_deleted',
        user_id: 'carol',
        entity_type: 'NDA',
        changes: { entities: nda('remove', { id: [id, null], title: ['Mutual NDA v3', null], counterparty: ['Acme Corp', null] }) },
      },
    ]);
  });

  it('an NDA renamed from "Trade secret NDA" keeps its new title in the diff (redaction by name, never by a value)', async () => {
    const server = app.getHttpServer();
    const created = await request(server).post('/ndas').send({ title: 'Trade secret NDA', counterparty: 'Acme' }).expect(201);
    const id = (created.body as { id: string }).id;
    await request(server).patch(`/ndas/${id}`).set('x-request-id', 'renamed').send({ title: 'Plain NDA' }).expect(200);
    const [row] = await db.query<{ changes: { entities: unknown[] } }>('SELECT changes FROM audit_log WHERE request_id = $1', ['renamed']);
    expect(row.changes.entities).toEqual([{ type: 'NDA', id, op: 'update', fields: { title: ['Trade secret NDA', 'Plain NDA'] } }]);
  });

  it('a PATCH that fails validation changes nothing and records no diff; an unknown NDA answers 404 as before', async () => {
    const created = await request(app.getHttpServer()).post('/ndas').send({ title: 'Kept', counterparty: 'Acme' }).expect(201);
    const id = (created.body as { id: string }).id;
    await request(app.getHttpServer()).patch(`/ndas/${id}`).set('x-request-id', 'bad-patch').send({ title: '' }).expect(400);
    await request(app.getHttpServer()).delete('/ndas/00000000-0000-4000-8000-000000000000').set('x-request-id', 'gone').expect(404);
    const rows = await db.query('SELECT request_id, changes FROM audit_log WHERE request_id IN ($1, $2) ORDER BY request_id', [
      'bad-patch',
      'gone',
    ]);
    expect(rows).toEqual([
      { request_id: 'bad-patch', changes: { body: { title: '' } } },
      { request_id: 'gone', changes: null },
    ]);
  });
});
