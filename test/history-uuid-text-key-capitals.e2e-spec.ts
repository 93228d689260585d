import { Body, Controller, type INestApplication, Param, Patch } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { Audited, AuditQueryService, AuditService } from '../src/audit';
import { historyReads } from '../src/audit/query/history-sql';
import { startDiffsApp, Tag } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// An app whose keys are text columns holding UUIDs in capitals (as Swift's `uuidString` and
// Windows write them) keeps them so in `changes.entities` (TypeORM hands the key back as stored),
// while the row's own `entity_id` holds the UUID in lower case: history() and erasure find the
// entity under either spelling (docs/GUIDE.md: history is "the rows about the entity, and the rows
// about another one whose `changes.entities` holds a change of it"), and the history still reads
// through its indexes, bounded by the page.
@Entity()
class Device {
  @PrimaryColumn('varchar') id!: string;
  @Column('text') name!: string;
}

@Controller()
class PairController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Patch('devices/:id/pair/:other')
  @Audited('device_paired', { entityType: 'Device', entityId: { param: 'id' } })
  pair(@Param('id') id: string, @Param('other') other: string, @Body() body: { name: string }): Promise<void> {
    return this.db.transaction(async (manager) => {
      const [first, second] = [await manager.findOneByOrFail(Device, { id }), await manager.findOneByOrFail(Device, { id: other })];
      first.name = body.name;
      second.name = `${body.name} (peer)`;
      await manager.save([first, second]);
    });
  }
}

describe('the history of an entity keyed by a UUID in capitals (a text column)', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const phone = 'A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF';
  const watch = 'F0E1D2C3-B4A5-4697-8877-665544332211';

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      {
        mode: 'sync',
        diffs: { entities: [Tag, Device] },
        privacy: { personalData: ['changes.entities[].fields.name'], pseudonymKey: 'a-pseudonym-key-of-at-least-32-characters' },
      },
      { entities: [Device], controllers: [PairController] },
    );
    await app
      .get(DataSource)
      .getRepository(Device)
      .insert([
        { id: phone, name: 'phone' },
        { id: watch, name: 'watch' },
      ]);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it("shows the change another device's request made of it, under the id as the table holds it", async () => {
    await request(app.getHttpServer()).patch(`/devices/${phone}/pair/${watch}`).send({ name: 'pair-1' }).expect(200);
    const [row] = await db.query<{ changes: { entities?: { type: string; id: string }[] } }>(
      `SELECT changes FROM audit_log WHERE action = 'device_paired'`,
    );
    // The trail holds the watch's change, under the key as its table holds it.
    expect((row.changes.entities ?? []).map((change) => change.id)).toContain(watch);
    const actions = (await app.get(AuditQueryService).history('Device', watch)).items.map((item) => item.action);
    expect(actions).toEqual(['device_paired']);
  }, 60_000);

  it('reads each spelling off the indexes, bounded by the page (EXPLAIN)', async () => {
    const { select } = historyReads('audit_log', 'Device', watch, undefined, 50);
    const runner = app.get(DataSource).createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      // The table is small: without this the planner may read it whole, whatever the indexes.
      await runner.query('SET LOCAL enable_seqscan = off');
      const plan = ((await runner.query(`EXPLAIN ${select}`)) as { 'QUERY PLAN': string }[]).map((row) => row['QUERY PLAN']).join('\n');
      // The id canonical, and in capitals: each read off each partition's time index newest first
      // (no sort of the entity's rows), the other entities' rows through the GIN index.
      for (const spelling of [watch.toLowerCase(), watch]) {
        expect(plan).toContain(`(entity_id = '${spelling}'::text))`);
      }
      const scans = plan.split('\n').filter((line) => line.includes('Index Scan') && !line.includes('Bitmap'));
      expect(scans.length).toBeGreaterThanOrEqual(2);
      expect(scans.every((line) => line.includes('Index Scan Backward') && line.includes('entity'))).toBe(true);
      expect(plan.match(/-> {2}Sort {2}/g)).toHaveLength(1);
      expect(plan).toMatch(/Bitmap Index Scan on \w*refs_idx/);
      expect(plan).not.toContain('Seq Scan');
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
  }, 60_000);

  // docs/PRIVACY.md "Erasing": `{ entityType, entityId }` erases every row about that entity, and a
  // row about another one that holds its change.
  it("erasing the device takes its values from another device's row", async () => {
    await request(app.getHttpServer()).patch(`/devices/${watch}/pair/${phone}`).send({ name: 'Jane Roe' }).expect(200);
    const showingName = async () =>
      (await app.get(AuditQueryService).search({}, { limit: 500 })).items.filter((row) => JSON.stringify(row).includes('Jane Roe (peer)'));
    expect(await showingName()).toHaveLength(1);
    const result = await app.get(AuditService).erase({ entityType: 'Device', entityId: phone, requestedBy: 'dpo', reason: 'request #1' });
    expect({ erased: result.erased, stillShowing: (await showingName()).length }).toEqual({ erased: 2, stillShowing: 0 });
  }, 60_000);
});
