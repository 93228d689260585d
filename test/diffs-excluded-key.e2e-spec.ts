import { Body, Controller, Delete, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, JoinColumn, ManyToOne, OneToOne, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md ("Diffs"): excluded properties never appear, a key's column neither: an entity keyed
// by an excluded property (a subscriber's e-mail address) has `"id": "[EXCLUDED]"` for every kind of
// write, a composite key keeps its other columns (`{ "tenant": "acme", "email": "[EXCLUDED]" }`),
// and a relation to such an entity (audited, with that rule) shows its id the same way.

@AuditedEntity({ type: 'Subscriber', exclude: ['email'] })
@Entity('keyed_subscriber')
class Subscriber {
  @PrimaryColumn('text') email!: string;
  @Column('text') plan!: string;
}

@AuditedEntity({ type: 'Member', exclude: ['email'] })
@Entity('keyed_member')
class Member {
  @PrimaryColumn('text') tenant!: string;
  @PrimaryColumn('text') email!: string;
  @Column('text') role!: string;
}

@AuditedEntity({ type: 'Invoice' })
@Entity('keyed_invoice')
class Invoice {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') total!: string;
  @ManyToOne(() => Subscriber, { nullable: true })
  @JoinColumn({ name: 'subscriber_email' })
  subscriber!: Subscriber | null;
  @ManyToOne(() => Member, { nullable: true })
  @JoinColumn([
    { name: 'member_tenant', referencedColumnName: 'tenant' },
    { name: 'member_email', referencedColumnName: 'email' },
  ])
  member!: Member | null;
}

/** Keyed by its subscriber's key: a foreign key to a key Subscriber's rule excludes. */
@AuditedEntity({ type: 'Profile' })
@Entity('keyed_profile')
class Profile {
  @PrimaryColumn('text') email!: string;
  @OneToOne(() => Subscriber)
  @JoinColumn({ name: 'email' })
  subscriber!: Subscriber;
  @Column('text') bio!: string;
}

/** Two keys away from the excluded one. */
@AuditedEntity({ type: 'Receipt' })
@Entity('keyed_receipt')
class Receipt {
  @PrimaryGeneratedColumn() id!: number;
  @ManyToOne(() => Profile)
  @JoinColumn({ name: 'profile_email' })
  profile!: Profile;
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

  @Post('invoices')
  async invoice(@Body() body: { subscriber: string; tenant: string; member: string }): Promise<void> {
    const subscriber = await this.db.getRepository(Subscriber).findOneByOrFail({ email: body.subscriber });
    const member = await this.db.getRepository(Member).findOneByOrFail({ tenant: body.tenant, email: body.member });
    await this.db.getRepository(Invoice).save(this.db.getRepository(Invoice).create({ total: '12.00', subscriber, member }));
  }

  @Post('profiles')
  async profile(@Body() body: { email: string }): Promise<void> {
    const subscriber = await this.db.getRepository(Subscriber).findOneByOrFail({ email: body.email });
    const profile = await this.db
      .getRepository(Profile)
      .save(this.db.getRepository(Profile).create({ email: body.email, subscriber, bio: 'Hi' }));
    await this.db.getRepository(Receipt).save(this.db.getRepository(Receipt).create({ profile }));
  }
}

describe('an excluded property that is the primary key (or part of it)', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let n = 0;

  const entitiesOf = async (method: 'post' | 'patch' | 'delete', path: string, body?: object): Promise<string> => {
    const requestId = `excluded-key-${++n}`;
    const response = await request(app.getHttpServer())[method](path).set('x-request-id', requestId).send(body);
    expect(response.status).toBeLessThan(300);
    return JSON.stringify((await changesOf(db, requestId)).entities);
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      { mode: 'sync' },
      { entities: [Subscriber, Member, Invoice, Profile, Receipt], controllers: [SubscribersController] },
    );
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
    const ids = [created, updated, removed, inserted].map((entities) => (JSON.parse(entities) as { id: unknown }[])[0].id);
    expect(ids).toEqual(['[EXCLUDED]', '[EXCLUDED]', '[EXCLUDED]', '[EXCLUDED]']);
  });

  it('keeps the excluded column of a composite key out of the change', async () => {
    const created = await entitiesOf('post', '/members', { tenant: 'acme', email: 'hidden-3@example.com', role: 'admin' });
    expect(created).toContain('acme');
    expect(created).not.toContain('hidden-3');
    expect(JSON.parse(created)).toMatchObject([{ type: 'Member', id: { tenant: 'acme', email: '[EXCLUDED]' } }]);
  });

  it('keeps the excluded key out of a relation to that entity, one column of a composite key too', async () => {
    const entities = await entitiesOf('post', '/invoices', {
      subscriber: 'hidden-2@example.com',
      tenant: 'acme',
      member: 'hidden-3@example.com',
    });
    expect(entities).not.toContain('hidden-');
    const [invoice] = JSON.parse(entities) as { type: string; fields: Record<string, unknown> }[];
    expect(invoice.type).toBe('Invoice');
    expect(invoice.fields.subscriber).toEqual([null, '[EXCLUDED]']);
    expect(invoice.fields.member).toEqual([null, { tenant: 'acme', email: '[EXCLUDED]' }]);
  });

  it('keeps it out of an entity keyed by a foreign key to it, and of a relation to that entity', async () => {
    const entities = await entitiesOf('post', '/profiles', { email: 'hidden-2@example.com' });
    expect(entities).not.toContain('hidden-');
    const [profile, receipt] = JSON.parse(entities) as { type: string; id: unknown; fields: Record<string, unknown> }[];
    expect(profile).toMatchObject({ type: 'Profile', id: '[EXCLUDED]', fields: { bio: [null, 'Hi'] } });
    expect(receipt).toMatchObject({ type: 'Receipt', fields: { profile: [null, '[EXCLUDED]'] } });
  });
});
