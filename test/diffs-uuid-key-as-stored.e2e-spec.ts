// A change's `id` is the entity's key as its column stores it (docs/GUIDE.md, "Before/after
// diffs"): a `uuid` key the client spelled in mixed case is stored in lower case, and so is the
// change's id. The entity's history, asked for by the id the database gives back, finds the row,
// and an erasure by entity takes the personal value the insert wrote (docs/PRIVACY.md, "Erasing").
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { AuditedEntity, AuditQueryService, AuditService } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@AuditedEntity({ type: 'Device' })
@Entity('uuid_device')
class Device {
  @PrimaryColumn('uuid') id!: string;
  @Column('text') owner!: string;
}

@Controller('devices')
class DevicesController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async register(@Body() body: { id: string; owner: string }): Promise<void> {
    const repo = this.db.getRepository(Device);
    await repo.save(repo.create(body));
  }
}

describe('an entity keyed by a uuid the client spelled in mixed case', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      {
        mode: 'sync',
        privacy: {
          personalData: ['changes.body.owner', 'changes.entities[].fields.owner'],
          pseudonymKey: 'a-pseudonym-key-of-at-least-32-characters',
        },
      },
      { entities: [Device], controllers: [DevicesController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('names the device as stored, and its history finds the row', async () => {
    // A device registered under its id in lower case: its history finds the row.
    const plain = '0193a1c2-0000-7000-8000-000000000001';
    await request(app.getHttpServer()).post('/devices').send({ id: plain, owner: 'John Doe' }).expect(201);
    expect((await app.get(AuditQueryService).history('Device', plain)).items).toHaveLength(1);
    // and its erasure takes the owner's name.
    await app.get(AuditService).erase({ entityType: 'Device', entityId: plain, requestedBy: 'dpo', reason: 'request #6' });
    const showing = async (name: string) =>
      (await app.get(AuditQueryService).search({}, { limit: 500 })).items.filter((row) => JSON.stringify(row).includes(name)).length;
    expect(await showing('John Doe')).toBe(0);

    const spelled = '0193A1c2-7B3e-7c4D-8e5F-0a1B2c3D4e5F';
    await request(app.getHttpServer())
      .post('/devices')
      .set('x-request-id', 'device-registered')
      .send({ id: spelled, owner: 'Jane Roe' })
      .expect(201);
    const [{ id: stored }] = await db.query<{ id: string }>('SELECT id::text FROM uuid_device WHERE owner = $1', ['Jane Roe']);
    expect(stored).toBe(spelled.toLowerCase());
    const entities = (await changesOf(db, 'device-registered')).entities as { id: unknown }[];
    const history = await app.get(AuditQueryService).history('Device', stored);
    await app.get(AuditService).erase({ entityType: 'Device', entityId: stored, requestedBy: 'dpo', reason: 'request #7' });
    const stillShowingName = await showing('Jane Roe');
    expect({ changeId: entities[0].id, historyRows: history.items.length, stillShowingName }).toEqual({
      changeId: stored,
      historyRows: 1,
      stillShowingName: 0,
    });
  });
});
