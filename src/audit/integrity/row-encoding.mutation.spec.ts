import { createHash } from 'node:crypto';
import { leafHashV2 } from '../privacy/encoding-v2';
import { compareKeys, keyRange, leafHash, SEALED_COLUMN_COUNT, type SortKey } from './row-encoding';

const A = '01937a4c-0000-7000-8000-00000000000a';
const B = '01937a4c-0000-7000-8000-00000000000b';

describe('leafHash', () => {
  it('is SHA-256 over 0x00 and each field as a 4-byte big-endian byte length and its UTF-8 bytes, ff ff ff ff for NULL', () => {
    const long = 'x'.repeat(300);
    const bytes = Buffer.concat([
      Buffer.from('00', 'hex'),
      Buffer.from('00000002', 'hex'),
      Buffer.from('ab'),
      Buffer.from('ffffffff', 'hex'),
      Buffer.from('00000002c3a9', 'hex'),
      Buffer.from('00000000', 'hex'),
      Buffer.from('0000012c', 'hex'),
      Buffer.from(long),
    ]);
    const expected = createHash('sha256').update(bytes).digest('hex');
    expect(leafHash(['ab', null, 'é', '', long]).toString('hex')).toBe(expected);
    expect(leafHash([]).toString('hex')).toBe(
      createHash('sha256')
        .update(Buffer.from([0]))
        .digest('hex'),
    );
  });

  it('covers fifteen sealed columns (the fifteenth, the commitments of row encoding 2, NULL on older rows)', () => {
    expect(SEALED_COLUMN_COUNT).toBe(15);
  });

  it('hashes a row whose commitments are NULL as version 1 of its fourteen fields, and one with commitments as version 2', () => {
    const fields = Array.from({ length: 14 }, (_, i) => `f${i}`);
    const v1 = leafHash(fields);
    expect(leafHash([...fields, null])).toEqual(v1);
    const v2 = [...fields, '{"user_id":"c1"}'];
    expect(leafHash(v2)).toEqual(leafHashV2(v2));
    expect(leafHash(v2)).not.toEqual(v1);
  });
});

describe('compareKeys', () => {
  const key = (tx: bigint | null, id: string): SortKey => ({ tx, id });

  it('orders as PostgreSQL orders (tx NULLS FIRST, id): tx as a number, then the id', () => {
    const keys = [key(10n, A), key(9n, B), key(null, B), key(10n, B), key(null, A), key(100n, A), key(9n, A)];
    expect([...keys].sort(compareKeys)).toEqual([
      key(null, A),
      key(null, B),
      key(9n, A),
      key(9n, B),
      key(10n, A),
      key(10n, B),
      key(100n, A),
    ]);
  });

  it('answers the sign of each comparison, and 0 for the same key', () => {
    expect(compareKeys(key(null, B), key(1n, A))).toBe(-1);
    expect(compareKeys(key(1n, A), key(null, B))).toBe(1);
    expect(compareKeys(key(2n, A), key(10n, A))).toBe(-1);
    expect(compareKeys(key(10n, A), key(2n, A))).toBe(1);
    expect(compareKeys(key(5n, A), key(5n, B))).toBe(-1);
    expect(compareKeys(key(5n, B), key(5n, A))).toBe(1);
    expect(compareKeys(key(5n, A), key(5n, A))).toBe(0);
    expect(compareKeys(key(null, A), key(null, B))).toBe(-1);
    expect(compareKeys(key(null, B), key(null, A))).toBe(1);
    expect(compareKeys(key(null, A), key(null, A))).toBe(0);
  });
});

describe('keyRange', () => {
  it('selects every row without bounds', () => {
    expect(keyRange(null, null)).toEqual({ where: 'TRUE', parameters: [] });
  });

  it('selects the rows after a key (exclusive), a NULL tx sorting first', () => {
    expect(keyRange({ tx: null, id: A }, null)).toEqual({ where: `(tx IS NOT NULL OR id > $1::uuid)`, parameters: [A] });
    expect(keyRange({ tx: '812', id: A }, null)).toEqual({
      where: `tx >= $1::bigint AND (tx > $1::bigint OR (tx = $1::bigint AND id > $2::uuid))`,
      parameters: ['812', A],
    });
  });

  it('selects the rows up to a key (inclusive), rows of a NULL tx included before any other', () => {
    expect(keyRange(null, { tx: null, id: B })).toEqual({ where: `(tx IS NULL AND id <= $1::uuid)`, parameters: [B] });
    expect(keyRange(null, { tx: '900', id: B })).toEqual({
      where: `(tx IS NULL OR tx < $1::bigint OR (tx = $1::bigint AND id <= $2::uuid))`,
      parameters: ['900', B],
    });
  });

  it('combines both bounds, numbering the parameters on from $1', () => {
    expect(keyRange({ tx: '812', id: A }, { tx: '900', id: B })).toEqual({
      where:
        `tx >= $1::bigint AND (tx > $1::bigint OR (tx = $1::bigint AND id > $2::uuid)) AND ` +
        `tx <= $3::bigint AND (tx < $3::bigint OR (tx = $3::bigint AND id <= $4::uuid))`,
      parameters: ['812', A, '900', B],
    });
    expect(keyRange({ tx: null, id: A }, { tx: '900', id: B })).toEqual({
      where: `(tx IS NOT NULL OR id > $1::uuid) AND (tx IS NULL OR tx < $2::bigint OR (tx = $2::bigint AND id <= $3::uuid))`,
      parameters: [A, '900', B],
    });
    expect(keyRange({ tx: null, id: A }, { tx: null, id: B })).toEqual({
      where: `(tx IS NOT NULL OR id > $1::uuid) AND (tx IS NULL AND id <= $2::uuid)`,
      parameters: [A, B],
    });
  });
});
