import { Body, Controller, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md ("Diffs"): "An id is redacted by name too": a relation to an entity whose composite
// key holds a secret column (the property `key`, stored as `api_key`) shows that relation's id with
// the secret column `"[REDACTED]"` and its other columns kept, as the entity's own id does; a change
// from one such entity to another is still listed (compared before redaction).

@AuditedEntity({ type: 'Device' })
@Entity('keyed_device')
class Device {
  @PrimaryColumn('text') tenant!: string;
  @PrimaryColumn('text', { name: 'api_key' }) key!: string;
  @Column('text') label!: string;
}

@AuditedEntity({ type: 'Pairing' })
@Entity('keyed_pairing')
class Pairing {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') note!: string;
  @ManyToOne(() => Device, { nullable: true })
  @JoinColumn([
    { name: 'device_tenant', referencedColumnName: 'tenant' },
    { name: 'device_key', referencedColumnName: 'key' },
  ])
  device!: Device | null;
}

const SERVER_MADE_KEY = 'sk-live-4f9a2c';
const OTHER_KEY = 'sk-live-77b1e0';

@Controller()
class DevicesController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('devices')
  async create(@Body() body: { tenant: string }): Promise<void> {
    // The key is made on the server (never in the request's body).
    const device = await this.db
      .getRepository(Device)
      .save(this.db.getRepository(Device).create({ tenant: body.tenant, key: SERVER_MADE_KEY, label: 'Reader' }));
    await this.db.getRepository(Pairing).save(this.db.getRepository(Pairing).create({ note: 'paired', device }));
  }

  @Post('pairings/:id/device')
  async repair(@Param('id') id: string): Promise<void> {
    const devices = this.db.getRepository(Device);
    const device = await devices.save(devices.create({ tenant: 'acme', key: OTHER_KEY, label: 'Spare' }));
    const pairings = this.db.getRepository(Pairing);
    const pairing = await pairings.findOneOrFail({ where: { id: Number(id) }, relations: { device: true } });
    pairing.device = device;
    await pairings.save(pairing);
  }
}

describe('a relation to an entity whose composite key holds a secret column', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Device, Pairing], controllers: [DevicesController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('redacts the secret key column in the device id and in the relation to it, keeping the other columns', async () => {
    const response = await request(app.getHttpServer()).post('/devices').set('x-request-id', 'relation-secret').send({ tenant: 'acme' });
    expect(response.status).toBe(201);
    const { entities } = await changesOf(db, 'relation-secret');
    const [device, pairing] = entities as { type: string; id: unknown; fields: Record<string, unknown> }[];
    expect(device).toMatchObject({ type: 'Device', id: { tenant: 'acme', key: '[REDACTED]' } });
    expect(pairing.type).toBe('Pairing');
    expect(JSON.stringify(pairing)).not.toContain(SERVER_MADE_KEY);
    expect(pairing.fields.device).toEqual([null, { tenant: 'acme', key: '[REDACTED]' }]);
  });

  it('lists a change from one such entity to another, both redacted', async () => {
    const [{ id }] = await db.query<{ id: number }>('SELECT id FROM keyed_pairing');
    const response = await request(app.getHttpServer()).post(`/pairings/${id}/device`).set('x-request-id', 'relation-secret-repair').send();
    expect(response.status).toBe(201);
    const { entities } = await changesOf(db, 'relation-secret-repair');
    const pairing = (entities as { type: string; fields: Record<string, unknown> }[]).find((change) => change.type === 'Pairing');
    expect(JSON.stringify(entities)).not.toMatch(/sk-live/);
    expect(pairing?.fields.device).toEqual([
      { tenant: 'acme', key: '[REDACTED]' },
      { tenant: 'acme', key: '[REDACTED]' },
    ]);
  });
});
