import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// Probe (attacker A3). docs/GUIDE.md: "An id is redacted by name too. An entity whose primary key is
// a secret by name (`token`, `apiKey`) has `"id": "[REDACTED]"`; a composite key keeps its other
// columns (`{ "tenant": "acme", "apiKey": "[REDACTED]" }`), and a relation to an entity keyed by a
// secret is `"[REDACTED]"`." A key column's name is its property path or its column name
// (`isSecretColumn`). Here the secret column is the property `key`, stored as `api_key`, part of a
// composite key: the entity's own id redacts it; a relation to that entity must not show it.

@AuditedEntity({ type: 'Device' })
@Entity('probe_device')
class Device {
  @PrimaryColumn('text') tenant!: string;
  @PrimaryColumn('text', { name: 'api_key' }) key!: string;
  @Column('text') label!: string;
}

@AuditedEntity({ type: 'Pairing' })
@Entity('probe_pairing')
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
}

describe('probe: a relation to an entity whose composite key holds a secret column', () => {
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

  it('writes the secret key column of neither the device nor the relation to it', async () => {
    const response = await request(app.getHttpServer())
      .post('/devices')
      .set('x-request-id', 'probe-relation-secret')
      .send({ tenant: 'acme' });
    expect(response.status).toBe(201);
    const { entities } = await changesOf(db, 'probe-relation-secret');
    const [device, pairing] = entities as { type: string; id: unknown; fields: Record<string, unknown> }[];
    expect(device).toMatchObject({ type: 'Device', id: { tenant: 'acme', key: '[REDACTED]' } });
    expect(pairing.type).toBe('Pairing');
    expect(JSON.stringify(pairing)).not.toContain(SERVER_MADE_KEY);
  });
});
