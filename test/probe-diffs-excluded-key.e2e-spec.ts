import { Body, Controller, Delete, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// Probe (attacker A3). docs/GUIDE.md: "Excluded properties (`@AuditedEntity({ exclude })` or
// `diffs.exclude`) never appear, for every kind of write (`save()`, `update()` by criteria,
// `insert()`, query builders, `remove()`)". An entity keyed by a natural key that is personal (a
// subscriber's e-mail address) excludes that property; the diff's `id` still carries it.

@AuditedEntity({ type: 'Subscriber', exclude: ['email'] })
@Entity('probe_subscriber')
class Subscriber {
  @PrimaryColumn('text') email!: string;
  @Column('text') plan!: string;
}

@AuditedEntity({ type: 'Member', exclude: ['email'] })
@Entity('probe_member')
class Member {
  @PrimaryColumn('text') tenant!: string;
  @PrimaryColumn('text') email!: string;
  @Column('text') role!: string;
}

@Controller()
class SubscribersController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('subscribers')
  async create(@Body() body: { email: string; plan: string }): Promise<void> {
    await this.db.getRepository(Subscriber).save(this.db.getRepository(Subscriber).create(body));
  }

  @Patch('subscribers/:n')
  async update(@Param('n') n: string, @Body() body: { plan: string }): Promise<void> {
    const repo = this.db.getRepository(Subscriber);
    const row = await repo.findOneByOrFail({ email: `hidden-${n}@example.com` });
    row.plan = body.plan;
    await repo.save(row);
  }

  @Delete('subscribers/:n')
  async remove(@Param('n') n: string): Promise<void> {
    const repo = this.db.getRepository(Subscriber);
    await repo.remove(await repo.findOneByOrFail({ email: `hidden-${n}@example.com` }));
  }

  @Post('subscribers/insert')
  async insert(@Body() body: { email: string; plan: string }): Promise<void> {
    await this.db.getRepository(Subscriber).insert(body);
  }

  @Post('members')
  async member(@Body() body: { tenant: string; email: string; role: string }): Promise<void> {
    await this.db.getRepository(Member).save(this.db.getRepository(Member).create(body));
  }
}

describe('probe: an excluded property that is the primary key (or part of it)', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let n = 0;

  const entitiesOf = async (method: 'post' | 'patch' | 'delete', path: string, body?: object): Promise<string> => {
    const requestId = `probe-key-${++n}`;
    const response = await request(app.getHttpServer())[method](path).set('x-request-id', requestId).send(body);
    expect(response.status).toBeLessThan(300);
    return JSON.stringify((await changesOf(db, requestId)).entities);
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Subscriber, Member], controllers: [SubscribersController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('keeps the excluded key out of the change of save(), an update, remove() and insert()', async () => {
    const created = await entitiesOf('post', '/subscribers', { email: 'hidden-1@example.com', plan: 'free' });
    const updated = await entitiesOf('patch', '/subscribers/1', { plan: 'pro' });
    const removed = await entitiesOf('delete', '/subscribers/1');
    const inserted = await entitiesOf('post', '/subscribers/insert', { email: 'hidden-2@example.com', plan: 'free' });
    expect([created, updated, removed, inserted].every((entities) => entities.includes('Subscriber'))).toBe(true);
    expect({ created, updated, removed, inserted }).toEqual({
      created: expect.not.stringContaining('hidden-') as unknown,
      updated: expect.not.stringContaining('hidden-') as unknown,
      removed: expect.not.stringContaining('hidden-') as unknown,
      inserted: expect.not.stringContaining('hidden-') as unknown,
    });
  });

  it('keeps the excluded column of a composite key out of the change', async () => {
    const created = await entitiesOf('post', '/members', { tenant: 'acme', email: 'hidden-3@example.com', role: 'admin' });
    expect(created).toContain('acme');
    expect(created).not.toContain('hidden-3');
  });
});
