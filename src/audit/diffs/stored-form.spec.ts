import { Column, DataSource, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { canonicalUuid, storedAlike } from './stored-form';

@Entity('stored_form_row')
class Row {
  @PrimaryGeneratedColumn() id!: number;
  @Column('numeric', { scale: 2 }) plain!: string;
  @Column('numeric', { precision: 10, scale: 2 }) cents!: string;
  @Column('numeric', { precision: 5, scale: -2 }) hundreds!: string;
  @Column('integer') count!: number;
  @Column('bigint') big!: string;
  @Column('boolean') active!: boolean;
  @Column() flag!: boolean;
  @Column('uuid') serial!: string;
  @Column('time') opensAt!: string;
  @Column('time', { precision: 0 }) closesAt!: string;
  @Column('timestamptz') seenAt!: Date;
  @Column({ type: 'timestamptz', precision: 0 }) checkedAt!: Date;
  @Column('jsonb') meta!: unknown;
  @Column('json') raw!: unknown;
  @Column('text') label!: string;
  @Column('text', { array: true }) tags!: string[];
  @Column('text', { transformer: { to: (value: string) => value.toUpperCase(), from: (value: string) => value } }) code!: string;
}

@Entity('stored_form_device')
class Device {
  @PrimaryColumn('uuid') id!: string;
}

describe('storedAlike', () => {
  let source: DataSource;
  const column = (name: string): ColumnMetadata => source.getMetadata(Row).findColumnWithPropertyName(name)!;
  /** True when the column stores the two values alike; undefined when that is not known. */
  const alike = (name: string, a: unknown, b: unknown): boolean | undefined => storedAlike(column(name))!(a, b);

  beforeAll(async () => {
    source = new DataSource({ type: 'postgres', entities: [Row, Device] });
    // The metadata alone: no connection is made.
    await (source as unknown as { buildMetadatas(): Promise<void> }).buildMetadatas();
  });

  it('rounds a numeric to the scale the column has: none without a precision, before the point for a negative one', () => {
    expect([alike('plain', '12.504', 12.5), alike('plain', '12.50', 12.5)]).toEqual([false, true]);
    expect([alike('cents', '12.50', 12.504), alike('cents', '12.50', 12.506)]).toEqual([true, false]);
    expect([alike('hundreds', '12300', 12345), alike('hundreds', '12300', 12351), alike('hundreds', '0', 49)]).toEqual([true, false, true]);
  });

  it('reads integers and booleans as PostgreSQL reads their text, after what TypeORM sends', () => {
    expect([alike('count', 5, '5'), alike('count', 5, ' +5 '), alike('count', 5, '6'), alike('count', 5, '5.0')]).toEqual([
      true,
      true,
      false,
      undefined,
    ]);
    expect([alike('big', '9007199254740993', 9007199254740993n), alike('big', '7', 7)]).toEqual([true, true]);
    expect(['true', 'TRUE', ' t ', 'yes', 'on', '1', 1].map((spelling) => alike('active', true, spelling))).toEqual(Array(7).fill(true));
    expect(['false', 'off', 'n', '0', 'no'].map((spelling) => alike('active', true, spelling))).toEqual(Array(5).fill(false));
    expect([alike('active', true, 'o'), alike('active', true, 'truth'), alike('active', true, '')]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    // A property typed `boolean` with no column type: TypeORM sends 1 for `true` only, so 'true' is stored as false.
    expect([alike('flag', true, 'true'), alike('flag', false, 'true'), alike('flag', true, true)]).toEqual([false, true, true]);
  });

  it('reads a uuid in any case, with braces or without hyphens, as one', () => {
    const lower = '0193a1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f';
    expect([lower.toUpperCase(), `{${lower}}`, lower.replace(/-/g, '')].map((spelling) => alike('serial', lower, spelling))).toEqual([
      true,
      true,
      true,
    ]);
    expect(alike('serial', lower, lower.replace('5f', '5e'))).toBe(false);
    expect([canonicalUuid(`{${lower}`), canonicalUuid(`${lower}-`), canonicalUuid('ORDER-42')]).toEqual([undefined, undefined, undefined]);
    expect(canonicalUuid('0193A1C27B3E7C4D8E5F0A1B2C3D4E5F')).toBe(lower);
  });

  it('reads a time to its seconds and its precision, a timestamp by its instant rounded to its precision', () => {
    expect([
      alike('opensAt', '10:00:00', '10:00'),
      alike('opensAt', '10:00:00', '10:00:00.000000'),
      alike('opensAt', '10:00:00', '10:00:01'),
    ]).toEqual([true, true, false]);
    expect([alike('opensAt', '10:00:00', '10:00:00.0000001'), alike('opensAt', '10:00:00', '10:00 AM')]).toEqual([undefined, undefined]);
    expect([alike('closesAt', '10:00:00', '10:00:00.4'), alike('closesAt', '10:00:01', '10:00:00.5')]).toEqual([true, true]);
    const at = new Date('2026-01-01T10:00:00.000Z');
    expect([alike('seenAt', at, '2026-01-01T10:00:00.000Z'), alike('seenAt', at, '2026-01-01T10:00:00.300Z')]).toEqual([true, false]);
    expect([alike('checkedAt', at, '2026-01-01T10:00:00.300Z'), alike('checkedAt', at, '2026-01-01T10:00:00.500Z')]).toEqual([true, false]);
    // Rounded half away from 2000-01-01, PostgreSQL's epoch, as it rounds.
    expect([
      alike('checkedAt', new Date('1999-12-31T23:59:58.000Z'), '1999-12-31T23:59:58.500Z'),
      alike('checkedAt', new Date('2000-01-01T00:00:02.000Z'), '2000-01-01T00:00:01.500Z'),
    ]).toEqual([true, true]);
  });

  it('reads jsonb by its JSON value, json by its text, and other columns by the text sent', () => {
    const when = new Date('2026-01-02T03:04:05.678Z');
    expect([
      alike('meta', { at: when.toISOString() }, { at: when }),
      alike('meta', { a: 1, b: 2 }, { b: 2, a: 1 }),
      alike('meta', { a: 1 }, { a: '1' }),
    ]).toEqual([true, true, false]);
    expect([alike('raw', { a: 1 }, { a: 1 }), alike('raw', { a: 1, b: 2 }, { b: 2, a: 1 })]).toEqual([true, false]);
    expect([alike('label', '5', 5), alike('label', 'a', 'a '), alike('label', 'a', 'A')]).toEqual([true, false, false]);
  });

  it('has none for an array column or one with a transformer, nor for an SQL expression', () => {
    expect(storedAlike(column('tags'))).toBeUndefined();
    expect(storedAlike(column('code'))).toBeUndefined();
    expect(alike('label', 'x', () => "'x'")).toBeUndefined();
  });
});
