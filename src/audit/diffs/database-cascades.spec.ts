import 'reflect-metadata';
import { Column, DataSource, Entity, type EntityMetadata, JoinColumn, ManyToOne, PrimaryColumn, type QueryRunner } from 'typeorm';
import { cascadedWrites, databaseCascades } from './database-cascades';
import { insertAnswered } from './upsert-statement';

@Entity('dc_a')
class A {
  @PrimaryColumn('int') id!: number;
  @ManyToOne(() => B, { onDelete: 'CASCADE', nullable: true }) b!: unknown;
}

@Entity('dc_b')
class B {
  @PrimaryColumn('int') id!: number;
  @ManyToOne(() => A, { onDelete: 'CASCADE', nullable: true }) a!: A;
}

/** Audited; refers to A (CASCADE): deleted with an A, or with a B through its A. */
@Entity('dc_audited')
class Audited {
  @PrimaryColumn('int') id!: number;
  @ManyToOne(() => A, { onDelete: 'CASCADE', nullable: true }) a!: A;
}

@Entity('dc_owner')
class Owner {
  @PrimaryColumn('int') id!: number;
  @Column('text', { unique: true }) code!: string;
}

/** Not audited: loses its owner's code on delete (SET NULL), keeps it in step on update (CASCADE). */
@Entity('dc_holder')
class Holder {
  @PrimaryColumn('int') id!: number;
  @ManyToOne(() => Owner, { onDelete: 'SET NULL', onUpdate: 'CASCADE', nullable: true })
  @JoinColumn({ name: 'owner_code', referencedColumnName: 'code' })
  owner!: Owner | null;
  @Column('text', { name: 'owner_code', unique: true, nullable: true }) ownerCode!: string | null;
  @Column('text', { unique: true, nullable: true }) tag!: string | null;
}

/** Audited: refers to the holder's code column, which the owner's key writes. */
@Entity('dc_follower')
class Follower {
  @PrimaryColumn('int') id!: number;
  @ManyToOne(() => Holder, { onUpdate: 'CASCADE', nullable: true })
  @JoinColumn({ name: 'holder_code', referencedColumnName: 'ownerCode' })
  holder!: Holder | null;
  @ManyToOne(() => Holder, { onUpdate: 'RESTRICT', nullable: true })
  @JoinColumn({ name: 'holder_tag', referencedColumnName: 'tag' })
  tagged!: Holder | null;
}

describe('foreign keys the database follows, along their chain', () => {
  let dataSource: DataSource;
  let metadataOf: (target: object) => EntityMetadata;
  const audited = new Set<unknown>([Audited, Follower]);
  const runner = {} as QueryRunner;

  beforeAll(async () => {
    dataSource = new DataSource({ type: 'postgres', entities: [A, B, Audited, Owner, Holder, Follower] });
    // The metadata alone, as initialize() builds it, with no connection.
    await (dataSource as unknown as { buildMetadatas(): Promise<void> }).buildMetadatas();
    metadataOf = (target) => dataSource.getMetadata(target as never);
  });

  it('follows a cycle of CASCADE keys through tables not audited, each key once', () => {
    const cascades = databaseCascades(dataSource.entityMetadatas, (metadata) => audited.has(metadata.target));
    expect(cascadedWrites(cascades, 'remove', metadataOf(A), {}, runner)).toBe(1);
    expect(cascadedWrites(cascades, 'remove', metadataOf(B), {}, runner)).toBe(1);
    expect(cascadedWrites(cascades, 'remove', metadataOf(Audited), {}, runner)).toBe(0);
  });

  it('follows a SET NULL on delete into the keys that refer to the column it sets, not into a RESTRICT', () => {
    const cascades = databaseCascades(dataSource.entityMetadatas, (metadata) => audited.has(metadata.target));
    expect(cascadedWrites(cascades, 'remove', metadataOf(Owner), {}, runner)).toBe(1);
    expect(cascadedWrites(cascades, 'remove', metadataOf(Holder), {}, runner)).toBe(0);
  });

  it('counts an update by the columns it writes', () => {
    const cascades = databaseCascades(dataSource.entityMetadatas, (metadata) => audited.has(metadata.target));
    const owner = metadataOf(Owner);
    const code = owner.findColumnWithPropertyName('code');
    const id = owner.findColumnWithPropertyName('id');
    expect(cascadedWrites(cascades, 'update', owner, { entity: { code: 'X' } }, runner)).toBe(1);
    expect(cascadedWrites(cascades, 'update', owner, { entity: { id: 2 } }, runner)).toBe(0);
    expect(cascadedWrites(cascades, 'update', owner, { entity: {}, databaseEntity: {}, updatedColumns: [code!] }, runner)).toBe(1);
    expect(cascadedWrites(cascades, 'update', owner, { entity: {}, databaseEntity: {}, updatedColumns: [id!] }, runner)).toBe(0);
  });

  it("counts an insert as an update of what its conflict clause overwrites, the conflict target's columns left out", () => {
    const cascades = databaseCascades(dataSource.entityMetadatas, (metadata) => audited.has(metadata.target));
    const owner = metadataOf(Owner);
    const insert = (sql: string) => {
      insertAnswered(runner, sql);
      return cascadedWrites(cascades, 'insert', owner, { entity: {} }, runner);
    };
    expect(
      insert(
        `INSERT INTO "dc_owner"("id", "code") VALUES ($1, $2) ON CONFLICT ( "id" ) DO UPDATE SET "id" = EXCLUDED."id", "code" = EXCLUDED."code"`,
      ),
    ).toBe(1);
    expect(
      insert(
        `INSERT INTO "dc_owner"("id", "code") VALUES ($1, $2) ON CONFLICT ( "code" ) DO UPDATE SET "id" = EXCLUDED."id", "code" = EXCLUDED."code"`,
      ),
    ).toBe(0);
    expect(
      insert(
        `INSERT INTO "public"."dc_owner"("id", "code") VALUES ($1, $2) ON CONFLICT ON CONSTRAINT "pk" DO UPDATE SET "code" = lower(EXCLUDED."code") WHERE "dc_owner"."code" IS DISTINCT FROM EXCLUDED."code"`,
      ),
    ).toBe(1);
    expect(insert(`INSERT INTO "dc_owner"("id", "code") VALUES ($1, 'do update set "code" = 1') RETURNING "id"`)).toBe(0);
    expect(insert(`INSERT INTO "dc_owner"("id", "code") VALUES ($1, $2) ON CONFLICT DO NOTHING`)).toBe(0);
    expect(
      insert(`INSERT INTO "dc_holder"("id", "code") VALUES ($1, $2) ON CONFLICT ( "id" ) DO UPDATE SET "code" = EXCLUDED."code"`),
    ).toBe(0);
    insertAnswered(runner, 'SELECT 1');
    expect(cascadedWrites(cascades, 'insert', owner, { entity: {} }, runner)).toBe(0);
  });
});
