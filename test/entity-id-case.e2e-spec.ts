import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { AuditQueryService, AuditService } from '../src/audit';
import { startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';

const TOKEN = 'auditor-token-for-the-e2e-suite';

// docs/PRIVACY.md, "Erasing": "`{ entityType, entityId }` erases every row about that entity";
// docs/GUIDE.md: an entity's history is its rows. The example app takes an NDA's id from the
// route (`ParseUUIDPipe`, which accepts any case, as PostgreSQL's uuid does) and records it as the
// client spelled it. A client that writes a person's name into NDA X through `/ndas/<X in capitals>`
// leaves a row about X that neither the history of X nor the erasure of X finds.
describe('probe: an entity id spelled in another case', () => {
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
});
