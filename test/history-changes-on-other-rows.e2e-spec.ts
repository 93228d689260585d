import { Body, Controller, type INestApplication, Param, Patch } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Audited, AuditQueryService } from '../src/audit';
import { Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md: `history(entityType, entityId)` is "one entity's rows", and the viewer's timeline
// "one entity's history, newest first, each change as old → new per field". A request that
// changes two entities in one transaction (a contract and the one it supersedes) records both
// changes on its one row, whose entity columns name the first. The second entity's history
// shows the change the trail holds of it, in its place among its own rows, once.
@Controller()
class SupersedeController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Patch('contracts/:id/supersede/:old')
  @Audited('contract_superseded', { entityType: 'Contract', entityId: { param: 'id' } })
  supersede(@Param('id') id: string, @Param('old') old: string, @Body() body: { title: string }): Promise<void> {
    return this.db.transaction(async (manager) => {
      const next = await manager.findOneByOrFail(Contract, { id });
      const previous = await manager.findOneByOrFail(Contract, { id: old });
      next.title = body.title;
      previous.title = `${previous.title} (superseded)`;
      await manager.save([next, previous]);
    });
  }
}

describe('the history of an entity changed in another entity’s request', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [SupersedeController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it("shows the change in both entities' histories, each with its own old → new", async () => {
    const create = async (title: string) =>
      ((await request(app.getHttpServer()).post('/contracts').send({ title, counterparty: 'Acme' }).expect(201)).body as { id: string }).id;
    const old = await create('Lease 2025');
    const next = await create('Lease 2026');
    await request(app.getHttpServer()).patch(`/contracts/${next}/supersede/${old}`).send({ title: 'Lease 2026 v2' }).expect(200);
    // The trail holds the change: on the request's one row, which names the new contract.
    const [row] = await db.query<{ entity_id: string; changes: { entities: { id: string }[] } }>(
      `SELECT entity_id, changes FROM audit_log WHERE action = 'contract_superseded'`,
    );
    expect({ entityId: row.entity_id, ids: row.changes.entities.map((change) => change.id).sort() }).toEqual({
      entityId: next,
      ids: [next, old].sort(),
    });
    const queries = app.get(AuditQueryService);
    const titleChanges = async (id: string) =>
      (await queries.history('Contract', id)).items.flatMap((row) =>
        ((row.changes as { entities?: { id: unknown; fields?: { title?: unknown } }[] } | null)?.entities ?? [])
          .filter((change) => change.id === id && change.fields?.title)
          .map((change) => change.fields?.title),
      );
    expect({ next: await titleChanges(next), old: await titleChanges(old) }).toEqual({
      next: [
        ['Lease 2026', 'Lease 2026 v2'],
        [null, 'Lease 2026'],
      ],
      old: [
        ['Lease 2025', 'Lease 2025 (superseded)'],
        [null, 'Lease 2025'],
      ],
    });
    // Page by page, each row once, newest first.
    const first = await queries.history('Contract', old, { limit: 1 });
    const second = await queries.history('Contract', old, { limit: 1, cursor: first.nextCursor ?? undefined });
    expect([...first.items, ...second.items].map((item) => item.action)).toEqual(['contract_superseded', 'contract_created']);
    expect(second.nextCursor).toBeNull();
  }, 30_000);
});
