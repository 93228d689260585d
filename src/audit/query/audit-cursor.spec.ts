import fc from 'fast-check';
import { AuditQueryError } from '../audit.errors';
import { cursorInstantSql, decodeAuditCursor, encodeAuditCursor } from './audit-cursor';

describe('audit cursors', () => {
  // PostgreSQL's whole range (4714 BC to 294276 AD, past a 64-bit integer at its end) and infinity.
  const us = fc.bigInt({ min: -210_866_803_200_000_000n, max: 9_224_318_015_999_999_999n });
  const key = fc.record({
    occurredUs: fc.oneof(us, fc.constantFrom<'infinity' | '-infinity'>('infinity', '-infinity')),
    id: fc.uuid().map((id) => id.toLowerCase()),
  });

  it('decode what they encode, as URL-safe text', () => {
    fc.assert(
      fc.property(key, (k) => {
        const cursor = encodeAuditCursor(k);
        expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(decodeAuditCursor(cursor)).toEqual(k);
      }),
    );
  });

  it('name their instant to the microsecond as days and microseconds after the epoch, or as infinity', () => {
    fc.assert(
      fc.property(us, (occurredUs) => {
        const sql = cursorInstantSql({ occurredUs, id: '00000000-0000-7000-8000-000000000001' });
        const [, days, rest] =
          /epoch' \+ (-?\d+) \* interval '1 day' \+ (-?\d+) \* interval '1 microsecond'\) AT TIME ZONE 'UTC'\)$/.exec(sql) ?? [];
        expect(BigInt(days) * 86_400_000_000n + BigInt(rest)).toBe(occurredUs);
        // A float8 holds the rest exactly: under a day of microseconds.
        expect(Math.abs(Number(rest))).toBeLessThan(86_400_000_000);
      }),
    );
    expect(cursorInstantSql({ occurredUs: 'infinity', id: '00000000-0000-7000-8000-000000000001' })).toBe("'infinity'::timestamptz");
  });

  it.each([
    ['not base64url', 'a+b/'],
    ['another version', Buffer.from('v2:1:00000000-0000-7000-8000-000000000001').toString('base64url')],
    ['a bad id', Buffer.from('v1:1:not-a-uuid').toString('base64url')],
    ['a time past year 294276', Buffer.from('v1:9224318016000000000:00000000-0000-7000-8000-000000000001').toString('base64url')],
    ['a time before 4714 BC', Buffer.from('v1:-210866803200000001:00000000-0000-7000-8000-000000000001').toString('base64url')],
    ['infinity spelled otherwise', Buffer.from('v1:Infinity:00000000-0000-7000-8000-000000000001').toString('base64url')],
    ['extra parts', Buffer.from('v1:1:00000000-0000-7000-8000-000000000001:x').toString('base64url')],
    ['a number', 12],
  ])('refuse %s with a 400 naming the cursor', (_, cursor) => {
    expect(() => decodeAuditCursor(cursor)).toThrow(AuditQueryError);
    expect(() => decodeAuditCursor(cursor)).toThrow(/^query parameter "cursor" must be a cursor returned as nextCursor/);
  });
});
