import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { changesOf } from './support/diffs-app';
import { type DealBody, startDiffsValuesApp } from './support/diffs-values-app';
import { TestPostgres } from './support/postgres';

type Change = {
  type: string;
  id: unknown;
  op: string;
  fields?: Record<string, unknown>;
  before?: unknown;
  after?: Record<string, unknown>;
};

// What a diff says of each value, read back from the request's audit row: redacted by property
// name only, secret keys hidden, relations shown by id, exclusions at any depth, and a value
// TypeORM did not load said to be unknown.
describe('diff values', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let n = 0;

  /** Sends a request and returns the entity changes of its audit row. */
  const send = async (method: 'post' | 'patch' | 'delete', path: string, body?: object): Promise<{ body: unknown; entities: Change[] }> => {
    const requestId = `values-${++n}`;
    const call = request(app.getHttpServer())[method](path).set('x-request-id', requestId);
    const response = await (body ? call.send(body) : call);
    expect(response.status).toBeLessThan(300);
    const changes = await changesOf(db, requestId);
    return { body: response.body as unknown, entities: (changes.entities ?? []) as Change[] };
  };
  const createDeal = async (body: DealBody) => ((await send('post', '/deals', body)).body as { id: number }).id;
  const party = async (name: string) => ((await send('post', '/parties', { name })).body as { id: number }).id;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsValuesApp(db);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  describe('case 7: redacted by property name, never by a value', () => {
    it('keeps a new value whose old value holds a redaction word, on update and on remove', async () => {
      const id = await createDeal({ title: 'Trade secret NDA' });
      const updated = await send('patch', `/deals/${id}`, { title: 'Plain NDA' });
      expect(updated.entities).toEqual([{ type: 'Deal', id, op: 'update', fields: { title: ['Trade secret NDA', 'Plain NDA'] } }]);
      await send('patch', `/deals/${id}`, { title: 'Session' });
      const removed = await send('delete', `/deals/${id}`);
      expect(removed.entities[0].fields?.title).toEqual(['Session', null]);
    });

    it('keeps values that look like secrets: text with key=value, a bearer token, an array of redaction words', async () => {
      const title = 'rotate: password=hunter2, Bearer abcdefghijkl';
      const id = await createDeal({ title, labels: ['token', 'session'] });
      const [inserted] = (await send('patch', `/deals/${id}`, { labels: ['password', 'cookie'] })).entities;
      expect(inserted.fields).toEqual({
        labels: [
          ['token', 'session'],
          ['password', 'cookie'],
        ],
      });
      const byCriteria = await send('post', `/deals/${id}/by-criteria`, { labels: ['auth', 'x'] });
      expect(byCriteria.entities).toEqual([{ type: 'Deal', id: null, op: 'update', before: 'unknown', after: { labels: ['auth', 'x'] } }]);
      const [created] = (await send('post', '/deals', { title, labels: ['pin', '1234'] })).entities;
      expect(created.fields).toMatchObject({ title: [null, title], labels: [null, ['pin', '1234']] });
    });

    it('redacts keys of JSON values and secret properties of embedded objects, by name, at any depth', async () => {
      const settings = { color: 'red', password: 'p1', nested: { apiKey: 'k1', list: [{ token: 't1', kind: 'a' }] } };
      const [created] = (await send('post', '/deals', { title: 'Json', settings, profile: { city: 'Oslo', pin: '4321' } })).entities;
      const redacted = {
        color: 'red',
        password: '[REDACTED]',
        nested: { apiKey: '[REDACTED]', list: [{ token: '[REDACTED]', kind: 'a' }] },
      };
      expect(created.fields).toEqual({
        id: [null, created.id],
        title: [null, 'Json'],
        settings: [null, redacted],
        'profile.city': [null, 'Oslo'],
        'profile.pin': '[REDACTED]',
      });
      const byCriteria = await send('post', `/deals/${created.id as number}/by-criteria`, { settings, profile: { pin: '9999' } });
      expect(byCriteria.entities[0].after).toEqual({ settings: redacted, 'profile.pin': '[REDACTED]' });
    });
  });

  describe('case 8: a secret key never goes out bare', () => {
    it('writes the id of an entity keyed by a secret as [REDACTED], on insert, update and remove', async () => {
      const key = 'sk-live-0123456789';
      const inserted = await send('post', '/api-keys', { token: key, label: 'ci' });
      const updated = await send('patch', `/api-keys/${key}`, { label: 'deploy' });
      const removed = await send('delete', `/api-keys/${key}`);
      expect([...inserted.entities, ...updated.entities, ...removed.entities]).toEqual([
        { type: 'ApiKey', id: '[REDACTED]', op: 'insert', fields: { token: '[REDACTED]', label: [null, 'ci'] } },
        { type: 'ApiKey', id: '[REDACTED]', op: 'update', fields: { label: ['ci', 'deploy'] } },
        { type: 'ApiKey', id: '[REDACTED]', op: 'remove', fields: { token: '[REDACTED]', label: ['deploy', null] } },
      ]);
      expect(JSON.stringify(await db.query("SELECT changes->'entities' AS e FROM audit_log"))).not.toContain(key);
    });

    it('writes a composite key with its secret part redacted and the rest kept', async () => {
      const inserted = await send('post', '/grants', { tenant: 'acme', apiKey: 'gk-secret-1', scope: 'read' });
      const updated = await send('patch', '/grants/acme/gk-secret-1', { scope: 'write' });
      expect([...inserted.entities, ...updated.entities].map(({ id, op }) => ({ id, op }))).toEqual([
        { id: { tenant: 'acme', apiKey: '[REDACTED]' }, op: 'insert' },
        { id: { tenant: 'acme', apiKey: '[REDACTED]' }, op: 'update' },
      ]);
    });

    it('redacts a relation whose related entity is keyed by a secret', async () => {
      await send('post', '/devices', { apiKey: 'dev-secret-1', label: 'phone' });
      await send('post', '/devices', { apiKey: 'dev-secret-2', label: 'laptop' });
      const [created] = (await send('post', '/deals', { title: 'Device deal', deviceKey: 'dev-secret-1' })).entities;
      expect(created.fields?.device).toBe('[REDACTED]');
      const updated = await send('patch', `/deals/${created.id as number}`, { deviceKey: 'dev-secret-2' });
      expect(updated.entities).toEqual([{ type: 'Deal', id: created.id, op: 'update', fields: { device: '[REDACTED]' } }]);
      expect(JSON.stringify(await db.query("SELECT changes->'entities' AS e FROM audit_log"))).not.toMatch(/dev-secret/);
    });
  });

  describe('case 9: a relation-only change', () => {
    it('reports a save() that changes only a many-to-one relation as its id before and after', async () => {
      const [first, second] = [await party('Acme'), await party('Globex')];
      const [created] = (await send('post', '/deals', { title: 'Owned', ownerId: first })).entities;
      expect(created.fields?.owner).toEqual([null, first]);
      const id = created.id as number;
      expect((await send('patch', `/deals/${id}`, { ownerId: second })).entities).toEqual([
        { type: 'Deal', id, op: 'update', fields: { owner: [first, second] } },
      ]);
      expect((await send('patch', `/deals/${id}`, { ownerId: null })).entities).toEqual([
        { type: 'Deal', id, op: 'update', fields: { owner: [second, null] } },
      ]);
      expect((await send('post', `/deals/${id}/by-criteria`, { ownerId: first })).entities[0].after).toEqual({ owner: first });
    });

    it('reports a save() that changes only the owning side of a one-to-one relation the same way', async () => {
      const [first, second] = [await party('Initech'), await party('Hooli')];
      const id = await createDeal({ title: 'Signed', signatoryId: first });
      expect((await send('patch', `/deals/${id}`, { signatoryId: second })).entities).toEqual([
        { type: 'Deal', id, op: 'update', fields: { signatory: [first, second] } },
      ]);
    });
  });

  describe('case 10: exclusions by path, at any depth, for every kind of write', () => {
    const profile = { nickname: 'Kit', city: 'Bergen' };
    const settings = { theme: 'dark', color: 'blue' };

    it('leaves an excluded embedded property and an excluded JSON key out of save(), update(), query builders and insert()', async () => {
      const [created] = (await send('post', '/deals', { title: 'Nested', profile, settings })).entities;
      expect(created.fields).toEqual({
        id: [null, created.id],
        title: [null, 'Nested'],
        'profile.city': [null, 'Bergen'],
        settings: [null, { color: 'blue' }],
      });
      const id = created.id as number;
      const saved = await send('patch', `/deals/${id}`, {
        profile: { nickname: 'Kat', city: 'Oslo' },
        settings: { theme: 'light', color: 'blue' },
      });
      expect(saved.entities).toEqual([{ type: 'Deal', id, op: 'update', fields: { 'profile.city': ['Bergen', 'Oslo'] } }]);
      const byCriteria = await send('post', `/deals/${id}/by-criteria`, { profile: { nickname: 'Kip', city: 'Rome' }, settings });
      expect(byCriteria.entities[0].after).toEqual({ 'profile.city': 'Rome', settings: { color: 'blue' } });
      const byBuilder = await send('post', `/deals/${id}/by-builder`, { profile: { nickname: 'Kay' } });
      expect(JSON.stringify(byBuilder.entities)).not.toContain('Kay');
      const inserted = await send('post', '/deals/inserted', { title: 'Inserted', profile, settings });
      expect(inserted.entities[0].after).toMatchObject({ title: 'Inserted', 'profile.city': 'Bergen', settings: { color: 'blue' } });
      const removed = await send('delete', `/deals/${id}`);
      expect(removed.entities[0].fields).toMatchObject({ 'profile.city': ['Rome', null], settings: [{ color: 'blue' }, null] });
      expect(JSON.stringify(await db.query("SELECT changes->'entities' AS e FROM audit_log"))).not.toMatch(/K(i[tp]|at|ay)|dark|light/);
    });
  });

  describe('case 11: a value TypeORM did not load is unknown, an unchanged one is never reported', () => {
    it('says unknown, never null, for a select: false column written by save() and removed by remove()', async () => {
      const id = await createDeal({ title: 'Noted', internalNote: 'first' });
      const saved = await send('patch', `/deals/${id}`, { internalNote: 'first', title: 'Noted again' });
      expect(saved.entities).toEqual([
        { type: 'Deal', id, op: 'update', fields: { title: ['Noted', 'Noted again'], internalNote: ['unknown', 'first'] } },
      ]);
      const removed = await send('delete', `/deals/${id}`);
      // remove() loads no relation ids either: the relations are unknown too; the device's key is a secret whatever it was.
      expect(removed.entities[0].fields).toEqual({
        id: [id, null],
        title: ['Noted again', null],
        internalNote: ['unknown', null],
        owner: ['unknown', null],
        signatory: ['unknown', null],
        device: '[REDACTED]',
      });
    });

    it('says unknown for a value an SQL expression sets', async () => {
      const id = await createDeal({ title: 'lower' });
      const byBuilder = await send('post', `/deals/${id}/by-builder`, { labels: ['x'] });
      expect(byBuilder.entities).toEqual([
        { type: 'Deal', id: null, op: 'update', before: 'unknown', after: { title: 'unknown', labels: ['x'] } },
      ]);
    });

    it('reports no change when the values written equal the values loaded', async () => {
      const id = await createDeal({ title: 'Same', terms: { a: 1, b: 2 } });
      expect((await send('patch', `/deals/${id}`, { terms: { b: 2, a: 1 } })).entities).toEqual([]);
      expect(await db.query('SELECT terms FROM deal WHERE id = $1', [id])).toEqual([{ terms: '{"b":2,"a":1}' }]);
    });
  });
});
