import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Probe (attack on the erasure promises). docs/PRIVACY.md: "`{ entityType, entityId }` [erases]
// every row about that entity. The whole row's personal values go", and "Diffs of
// `@AuditedEntity()` entities sit at `changes.entities[].fields.<property>`" (name them in
// `personalData`). A request may change an entity without being the row's entity: a bulk update
// (`POST /contracts/rename-counterparty`) records the contract's diff in `changes.entities[]` of a
// row whose own entity is not that contract. Erasing the contract by entity leaves that row's
// personal values (the counterparty's name, before and after) in place, with nothing named.
describe('probe: erasure by entity and the entity diffs of other rows', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = await startDiffsApp(db, {
      privacy: {
        // The counterparty's name wherever this app logs it: request bodies and the contract's diffs.
        personalData: ['changes.body.counterparty', 'changes.body.from', 'changes.body.to', 'changes.entities[].fields.counterparty'],
        pseudonymKey: 'a-pseudonym-key-of-at-least-32-characters',
      },
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('leaves no personal value of the erased entity in any row, its diffs in other rows included', async () => {
    const created = await request(app.getHttpServer()).post('/contracts').send({ title: 'NDA', counterparty: 'Jane Roe' }).expect(201);
    const id = (created.body as { id: string }).id;
    await request(app.getHttpServer()).post('/contracts/rename-counterparty').send({ from: 'Jane Roe', to: 'Jane Doe' }).expect(201);
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log`)).length === 2);
    const holding = () =>
      db.query<{ entity_type: string | null; entity_id: string | null }>(
        `SELECT entity_type, entity_id FROM audit_log WHERE personal LIKE '%Jane%' OR changes::text LIKE '%Jane%' ORDER BY occurred_at`,
      );
    // Both rows hold the contract's counterparty: the one about it, and the bulk update's diff of it.
    expect(await holding()).toHaveLength(2);

    const erasure = await app.get(AuditService).erase({ entityType: 'Contract', entityId: id, requestedBy: 'dpo@example.com' });
    expect(erasure.erased).toBe(1);
    expect(await holding()).toEqual([]);
  }, 60_000);
});
