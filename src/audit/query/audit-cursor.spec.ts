import fc from 'fast-check';
import { AuditQueryError } from '../audit.errors';
import { cursorInstant, decodeAuditCursor, encodeAuditCursor } from './audit-cursor';

describe('audit cursors', () => {
  const key = fc.record({
    occurredUs: fc.bigInt({ min: -62_135_596_800_000_000n, max: 253_402_300_799_999_999n }),
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

  it('spell their instant to the microsecond, as Date would to the millisecond', () => {
    fc.assert(
      fc.property(key, (k) => {
        const text = cursorInstant(k);
        const ms = Number((k.occurredUs - (((k.occurredUs % 1000n) + 1000n) % 1000n)) / 1000n);
        expect(text.slice(0, 23)).toBe(new Date(ms).toISOString().slice(0, 23));
        expect(text.slice(23, 26)).toBe(String(((k.occurredUs % 1000n) + 1000n) % 1000n).padStart(3, '0'));
      }),
    );
  });

  it.each([
    ['not base64url', 'a+b/'],
    ['another version', Buffer.from('v2:1:00000000-0000-7000-8000-000000000001').toString('base64url')],
    ['a bad id', Buffer.from('v1:1:not-a-uuid').toString('base64url')],
    ['a time past year 9999', Buffer.from('v1:253402300800000000:00000000-0000-7000-8000-000000000001').toString('base64url')],
    ['extra parts', Buffer.from('v1:1:00000000-0000-7000-8000-000000000001:x').toString('base64url')],
    ['a number', 12],
  ])('refuse %s with a 400 naming the cursor', (_, cursor) => {
    expect(() => decodeAuditCursor(cursor)).toThrow(AuditQueryError);
    expect(() => decodeAuditCursor(cursor)).toThrow(/^query parameter "cursor" must be a cursor returned as nextCursor/);
  });
});
