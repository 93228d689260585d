import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { AuditQueryService, AuditService } from '../src/audit';
import { startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';

const TOKEN = 'auditor-token-for-the-e2e-suite';

// docs/PRIVACY.md, "Erasing": "`{ entityType, entityId }` erases every row about that entity";
// docs/GUIDE.md: an entity's history is its rows, and a UUID entity id is stored in lower case.
// The example app takes an NDA's id from the route (`ParseUUIDPipe`, which accepts any case, as
// PostgreSQL's uuid does): a client that writes a person's name into NDA X through
// `/ndas/<X in capitals>` leaves a row about X, which the history and the erasure of X find,
// however the operator spells X; so do they a row an earlier version stored in capitals.
describe('an entity id spelled in capitals names the same entity', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

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
      AUDIT_PRIVACY_PSEUDONYM_KEY: 'a-pseudonym-key-of-at-least-32-characters',
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    delete process.env.AUDIT_PRIVACY_PERSONAL_DATA;
    delete process.env.AUDIT_PRIVACY_PSEUDONYM_KEY;
    await db?.stop();
  });

  it('the entity’s history holds, and its erasure takes, every row about it', async () => {
    const server = app.getHttpServer();
    const created = await request(server).post('/ndas').send({ title: 'Mutual NDA', counterparty: 'Acme' }).expect(201);
    const id = (created.body as { id: string }).id;
    // The same NDA, named in capitals: the update is refused (a title must be text), the request recorded.
    await request(server).patch(`/ndas/${id.toUpperCase()}`).send({ counterparty: 'Jane Roe', title: 42 }).expect(400);
    const showingName = async () =>
      (await app.get(AuditQueryService).search({}, { limit: 500 })).items.filter((row) => JSON.stringify(row).includes('Jane Roe'));
    expect(await showingName()).toHaveLength(1);

    const history = (await request(server).get(`/ndas/${id}/history`).set('x-auditor-token', TOKEN).expect(200)).body as {
      items: { action: string; outcome: string }[];
    };
    const erasure = await app.get(AuditService).erase({ entityType: 'NDA', entityId: id, requestedBy: 'dpo', reason: 'request #12' });
    expect({
      history: history.items.map((row) => [row.action, row.outcome]),
      erased: erasure.erased,
      stillShowingName: (await showingName()).length,
    }).toEqual({
      history: [
        ['nda_updated', 'failure'],
        ['nda_created', 'success'],
      ],
      erased: 2,
      stillShowingName: 0,
    });
  }, 60_000);

  it('an operator naming the entity in capitals reads and erases the same rows', async () => {
    const server = app.getHttpServer();
    const created = await request(server).post('/ndas').send({ title: 'Mutual NDA', counterparty: 'Acme' }).expect(201);
    const id = (created.body as { id: string }).id;
    await request(server).patch(`/ndas/${id}`).send({ counterparty: 'Jane Roe' }).expect(200);
    const queries = app.get(AuditQueryService);
    const actions = (page: { items: { action: string }[] }) => page.items.map((row) => row.action);
    const erasure = await app.get(AuditService).erase({ entityType: 'NDA', entityId: id.toUpperCase(), requestedBy: 'dpo', dryRun: true });
    expect({
      history: actions(await queries.history('NDA', id.toUpperCase())),
      search: actions(await queries.search({ entityType: 'NDA', entityId: id.toUpperCase() })),
      erasable: erasure.rows.length,
    }).toEqual({ history: ['nda_updated', 'nda_created'], search: ['nda_updated', 'nda_created'], erasable: 2 });
  }, 60_000);

  it('the erasure of an entity takes the rows an earlier version stored with its id in capitals', async () => {
    const created = await request(app.getHttpServer()).post('/ndas').send({ title: 'Mutual NDA', counterparty: 'Acme' }).expect(201);
    const id = (created.body as { id: string }).id;
    // As a version that kept the id as the client spelled it stored the same request made through
    // capitals, refused before any change (so no `changes.entities` names the NDA in lower case).
    const [legacy] = await db.query<{ id: string }>(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, changes, personal, commitments)
       SELECT gen_random_uuid(), now(), action, entity_type, upper(entity_id), user_id, outcome, ip, user_agent, changes - 'entities', personal, commitments
       FROM audit_log WHERE entity_type = 'NDA' AND entity_id = $1 RETURNING id::text AS id`,
      [id],
    );
    const erasure = await app.get(AuditService).erase({ entityType: 'NDA', entityId: id, requestedBy: 'dpo', reason: 'request #13' });
    const [after] = await db.query<{ personal: string }>(`SELECT personal FROM audit_log WHERE id = $1`, [legacy.id]);
    expect({ erased: erasure.erased, legacy: erasure.rows.find((row) => row.id === legacy.id)?.state, personal: after.personal }).toEqual({
      erased: 2,
      legacy: 'erased',
      personal: expect.stringMatching(/^\{"erased":/) as unknown,
    });
  }, 60_000);
});
