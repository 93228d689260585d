import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { changesOf, type Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

const ISO = expect.stringMatching(/^\d{4}-\d\d-\d\dT/);

// Diffs of an audited entity through save, update by criteria, remove, soft-remove and recover,
// read back from the request's audit row (the entities live in another DataSource than audit_log).
describe('before/after diffs on the request row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let n = 0;

  const send = (method: 'post' | 'patch' | 'delete', path: string, body?: object) => {
    const requestId = `req-${++n}`;
    const call = request(app.getHttpServer())[method](path).set('x-request-id', requestId);
    return { requestId, response: body ? call.send(body) : call };
  };
  const create = async (title: string, counterparty: string) => {
    const { requestId, response } = send('post', '/contracts', { title, counterparty });
    return { requestId, id: ((await response.expect(201)).body as Contract).id };
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('records an insert with every column after, none before, the excluded one left out and the secret redacted', async () => {
    const { requestId, response } = send('post', '/contracts', { title: 'Pilot', counterparty: 'Acme', apiToken: 'tok-123' });
    const id = ((await response.expect(201)).body as Contract).id;
    expect(await changesOf(db, requestId)).toEqual({
      body: { title: 'Pilot', counterparty: 'Acme', apiToken: '[REDACTED]' },
      entities: [
        {
          type: 'Contract',
          id,
          op: 'insert',
          fields: { id: [null, id], title: [null, 'Pilot'], counterparty: [null, 'Acme'], apiToken: '[REDACTED]' },
        },
      ],
    });
  });

  it('records an update by save() as the changed fields, old and new', async () => {
    const { id } = await create('Draft', 'Acme');
    const { requestId, response } = send('patch', `/contracts/${id}`, { title: 'Final', counterparty: 'Acme' });
    await response.expect(200);
    expect((await changesOf(db, requestId)).entities).toEqual([
      { type: 'Contract', id, op: 'update', fields: { title: ['Draft', 'Final'] } },
    ]);
  });

  it('keeps concurrent requests’ diffs apart: each row has its own request’s change only', async () => {
    const contracts = await Promise.all(Array.from({ length: 20 }, (_, i) => create(`Parallel ${i}`, 'Acme')));
    const patches = contracts.map(({ id }, i) => ({ id, i, ...send('patch', `/contracts/${id}`, { title: `Parallel ${i} signed` }) }));
    await Promise.all(patches.map((p) => p.response.expect(200)));
    for (const { id, i, requestId } of patches) {
      expect((await changesOf(db, requestId)).entities).toEqual([
        { type: 'Contract', id, op: 'update', fields: { title: [`Parallel ${i}`, `Parallel ${i} signed`] } },
      ]);
    }
  });

  it('records an update by criteria with the new values only, the old ones marked unknown', async () => {
    await create('Lease', 'Initech');
    const { requestId, response } = send('post', '/contracts/rename-counterparty', { from: 'Initech', to: 'Initrode' });
    await response.expect(201);
    expect((await changesOf(db, requestId)).entities).toEqual([
      { type: 'Contract', id: null, op: 'update', before: 'unknown', after: { counterparty: 'Initrode' } },
    ]);
  });

  it('records insert() through the entity manager with the values written, and delete() by criteria as a remove of unknown rows', async () => {
    const inserted = send('post', '/contracts/inserted', { title: 'Bulk', counterparty: 'Stark' });
    const id = ((await inserted.response.expect(201)).body as Contract).id;
    expect((await changesOf(db, inserted.requestId)).entities).toEqual([
      // insert() and upsert() share the query builder: TypeORM does not say whether a conflict made it an update.
      { type: 'Contract', id, op: 'insert', before: 'unknown', after: { title: 'Bulk', counterparty: 'Stark', id, deletedAt: null } },
    ]);
    const purged = send('post', '/contracts/purge', { counterparty: 'Stark' });
    await purged.response.expect(201);
    expect(await db.query("SELECT 1 FROM contract WHERE counterparty = 'Stark'")).toEqual([]);
    expect((await changesOf(db, purged.requestId)).entities).toEqual([{ type: 'Contract', id: null, op: 'remove', before: 'unknown' }]);
  });

  it('records a remove with the row as it was', async () => {
    const { id } = await create('Old deal', 'Hooli');
    const { requestId, response } = send('delete', `/contracts/${id}`);
    await response.expect(204);
    expect(await changesOf(db, requestId)).toEqual({
      entities: [
        {
          type: 'Contract',
          id,
          op: 'remove',
          fields: { id: [id, null], title: ['Old deal', null], counterparty: ['Hooli', null] },
        },
      ],
    });
  });

  it('records a soft-remove and a recover as the delete date set and cleared', async () => {
    const { id } = await create('Paused', 'Umbrella');
    const archived = send('post', `/contracts/${id}/archive`);
    await archived.response.expect(201);
    expect((await changesOf(db, archived.requestId)).entities).toEqual([
      { type: 'Contract', id, op: 'soft-remove', fields: { deletedAt: [null, ISO] } },
    ]);
    const restored = send('post', `/contracts/${id}/restore`);
    await restored.response.expect(201);
    expect((await changesOf(db, restored.requestId)).entities).toEqual([
      { type: 'Contract', id, op: 'recover', fields: { deletedAt: [ISO, null] } },
    ]);
  });

  it('records an entity named in the module option, and nothing for one that is not audited', async () => {
    const tagged = send('post', '/tags', { label: 'urgent' });
    const tag = (await tagged.response.expect(201)).body as { id: number };
    expect((await changesOf(db, tagged.requestId)).entities).toEqual([
      { type: 'Tag', id: tag.id, op: 'insert', fields: { id: [null, tag.id], label: [null, 'urgent'] } },
    ]);
    const noted = send('post', '/notes', { text: 'hello' });
    await noted.response.expect(201);
    expect(await changesOf(db, noted.requestId)).toEqual({ body: { text: 'hello' } });
  });
});
