import { Body, Controller, Delete, HttpCode, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { Column, DataSource, Entity, JoinColumn, ManyToOne, OneToOne, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { type QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { AuditedEntity, type AuditModuleOptions } from '../../src/audit';
import { type TestPostgres } from './postgres';
import { startDiffsApp } from './diffs-app';

/** Embedded in {@link Deal}: `profile.nickname` is excluded, `profile.pin` is a secret by name. */
export class Profile {
  @Column('text', { nullable: true }) nickname!: string | null;
  @Column('text', { nullable: true }) city!: string | null;
  @Column('text', { nullable: true }) pin!: string | null;
}

/** A deal's owner: a plain numeric key. */
@Entity('party')
export class Party {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
}

/** Its key is a secret: a relation to it must not write the key into a diff. */
@Entity('device')
export class Device {
  @PrimaryColumn('text') apiKey!: string;
  @Column('text') label!: string;
}

/** An audited entity with every kind of value a diff must treat by name, not by value. */
@AuditedEntity({ type: 'Deal', exclude: ['profile.nickname', 'settings.theme'] })
@Entity('deal')
export class Deal {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @Column('text', { nullable: true, select: false }) internalNote?: string | null;
  @Column(() => Profile) profile!: Profile;
  @Column('jsonb', { nullable: true }) settings!: Record<string, unknown> | null;
  @Column('simple-json', { nullable: true }) terms!: Record<string, unknown> | null;
  @Column('text', { array: true, nullable: true }) labels!: string[] | null;
  @ManyToOne(() => Party, { nullable: true }) owner!: Party | null;
  @ManyToOne(() => Device, { nullable: true }) device!: Device | null;
  @OneToOne(() => Party, { nullable: true })
  @JoinColumn()
  signatory!: Party | null;
}

/** Audited, keyed by a secret. */
@AuditedEntity({ type: 'ApiKey' })
@Entity('api_key')
export class ApiKey {
  @PrimaryColumn('text') token!: string;
  @Column('text') label!: string;
}

/** Audited, keyed by a tenant and a secret. */
@AuditedEntity({ type: 'Grant' })
@Entity('grant')
export class Grant {
  @PrimaryColumn('text') tenant!: string;
  @PrimaryColumn('text') apiKey!: string;
  @Column('text') scope!: string;
}

/** What a client sends for a deal: the relations by id. */
export type DealBody = Partial<Omit<Deal, 'owner' | 'device' | 'signatory' | 'profile'>> & {
  profile?: Partial<Profile>;
  ownerId?: number | null;
  signatoryId?: number | null;
  deviceKey?: string | null;
};

function dealValues(body: DealBody): Partial<Deal> {
  const { ownerId, signatoryId, deviceKey, ...values } = body;
  const deal = values as Partial<Deal>;
  if (ownerId !== undefined) deal.owner = ownerId === null ? null : ({ id: ownerId } as Party);
  if (signatoryId !== undefined) deal.signatory = signatoryId === null ? null : ({ id: signatoryId } as Party);
  if (deviceKey !== undefined) deal.device = deviceKey === null ? null : ({ apiKey: deviceKey } as Device);
  return deal;
}

@Controller()
class DealsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('parties')
  party(@Body() body: { name: string }): Promise<Party> {
    return this.db.getRepository(Party).save({ name: body.name });
  }

  @Post('devices')
  device(@Body() body: { apiKey: string; label: string }): Promise<Device> {
    return this.db.getRepository(Device).save(body);
  }

  @Post('deals')
  async create(@Body() body: DealBody): Promise<{ id: number }> {
    const { id } = await this.db.getRepository(Deal).save(this.db.getRepository(Deal).create(dealValues(body)));
    return { id };
  }

  /** Loads the deal as find() does (no `select: false` column), merges the body and saves. */
  @Patch('deals/:id')
  async update(@Param('id') id: string, @Body() body: DealBody): Promise<void> {
    const repo = this.db.getRepository(Deal);
    await repo.save(repo.merge(await repo.findOneByOrFail({ id: Number(id) }), dealValues(body)));
  }

  @Post('deals/:id/by-criteria')
  async byCriteria(@Param('id') id: string, @Body() body: DealBody): Promise<void> {
    await this.db.getRepository(Deal).update({ id: Number(id) }, dealValues(body) as QueryDeepPartialEntity<Deal>);
  }

  /** A query builder update that sets `values` and the title to an SQL expression. */
  @Post('deals/:id/by-builder')
  async byBuilder(@Param('id') id: string, @Body() body: DealBody): Promise<void> {
    await this.db
      .createQueryBuilder()
      .update(Deal)
      .set({ ...(dealValues(body) as QueryDeepPartialEntity<Deal>), title: () => 'upper(title)' })
      .where('id = :id', { id: Number(id) })
      .execute();
  }

  @Post('deals/inserted')
  async insert(@Body() body: DealBody): Promise<{ id: number }> {
    const { identifiers } = await this.db.createEntityManager().insert(Deal, dealValues(body) as QueryDeepPartialEntity<Deal>);
    return { id: identifiers[0].id as number };
  }

  @Delete('deals/:id')
  @HttpCode(204)
  async remove(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Deal);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }

  @Post('api-keys')
  async apiKey(@Body() body: { token: string; label: string }): Promise<void> {
    await this.db.getRepository(ApiKey).save(this.db.getRepository(ApiKey).create(body));
  }

  @Patch('api-keys/:token')
  async relabel(@Param('token') token: string, @Body() body: { label: string }): Promise<void> {
    const repo = this.db.getRepository(ApiKey);
    await repo.save(repo.merge(await repo.findOneByOrFail({ token }), body));
  }

  @Delete('api-keys/:token')
  @HttpCode(204)
  async revoke(@Param('token') token: string): Promise<void> {
    const repo = this.db.getRepository(ApiKey);
    await repo.remove(await repo.findOneByOrFail({ token }));
  }

  @Post('grants')
  async grant(@Body() body: { tenant: string; apiKey: string; scope: string }): Promise<void> {
    await this.db.getRepository(Grant).save(this.db.getRepository(Grant).create(body));
  }

  @Patch('grants/:tenant/:apiKey')
  async rescope(@Param('tenant') tenant: string, @Param('apiKey') apiKey: string, @Body() body: { scope: string }): Promise<void> {
    const repo = this.db.getRepository(Grant);
    await repo.save(repo.merge(await repo.findOneByOrFail({ tenant, apiKey }), body));
  }
}

/**
 * The diffs app with the entities above: the values a diff must carry by property name (secrets,
 * nested exclusions, relations, values TypeORM did not load).
 */
export function startDiffsValuesApp(db: TestPostgres, options: AuditModuleOptions = {}): Promise<INestApplication<Server>> {
  return startDiffsApp(
    db,
    { mode: 'sync', ...options },
    { entities: [Party, Device, Deal, ApiKey, Grant], controllers: [DealsController] },
  );
}
