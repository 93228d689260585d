import { Body, Controller, type INestApplication, Param, Patch } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Audited, AuditQueryService, AuditService } from '../src/audit';
import { Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

const PSEUDONYM_KEY = 'a-pseudonym-key-of-at-least-32-characters';

// docs/PRIVACY.md: "`{ entityType, entityId }` erases every row about that entity", and "Diffs of
// `@AuditedEntity()` entities sit at `changes.entities[].fields.<property>`". A request that
// changes two contracts in one transaction records both diffs on its one row, whose entity
// columns name the first. Erasing the second contract must leave none of its personal values
// readable, wherever the trail holds its diff.
@Controller()
class TransferController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Patch('contracts/:id/take-over/:other')
  @Audited('contract_taken_over', { entityType: 'Contract', entityId: { param: 'id' } })
  takeOver(@Param('id') id: string, @Param('other') other: string, @Body() body: { counterparty: string }): Promise<void> {
    return this.db.transaction(async (manager) => {
      const taker = await manager.findOneByOrFail(Contract, { id });
      const given = await manager.findOneByOrFail(Contract, { id: other });
      taker.counterparty = body.counterparty;
      given.counterparty = `${given.counterparty} (handed over)`;
      await manager.save([taker, given]);
    });
  }
}

describe('probe: erasing an entity whose diff sits on another entity’s row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      {
        mode: 'sync',
        privacy: { personalData: ['changes.body.counterparty', 'changes.entities[].fields.counterparty'], pseudonymKey: PSEUDONYM_KEY },
      },
      { controllers: [TransferController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('leaves no value of the erased contract readable on any row', async () => {
    const create = async (counterparty: string) =>
      ((await request(app.getHttpServer()).post('/contracts').send({ title: 'Lease', counterparty }).expect(201)).body as { id: string })
        .id;
    const given = await create('Jane Roe');
    const taker = await create('Acme Ltd');
    await request(app.getHttpServer()).patch(`/contracts/${taker}/take-over/${given}`).send({ counterparty: 'Acme Group' }).expect(200);
    /** The actions of the rows a read shows the person's name on. */
    const showingName = async () =>
      (await app.get(AuditQueryService).search({}, { limit: 500 })).items
        .filter((row) => JSON.stringify(row).includes('Jane Roe'))
        .map((row) => row.action);
    expect((await showingName()).sort()).toEqual(['contract_created', 'contract_taken_over']);

    const result = await app.get(AuditService).erase({ entityType: 'Contract', entityId: given, requestedBy: 'dpo', reason: 'request #9' });
    expect(result.erased).toBeGreaterThan(0);
    expect(await showingName()).toEqual([]);
  }, 30_000);
});
