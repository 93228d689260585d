import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { resolveEntryKeys, signEntry } from './entry-auth';
import { entryDigest } from './entry-encoding';

// The code is computed the fast way (the payload's jsonb text from the value itself, the HMAC's
// two blocks in JavaScript); these hold it to the slow, sure way, on any input.
const base = new AuditEntryNormalizer([], 65536).normalize({ action: 'nda_created', entityType: 'NDA', entityId: 7 }).record;

/** A stand-in whose JSON text is `value`'s: the digest then goes through that text, parsed back, as it did before. */
function viaText(value: unknown): unknown {
  // No payload at all is no text, either way.
  if (value === null || value === undefined) return value;
  return {
    toJSON: () => {
      const text = JSON.stringify(value);
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    },
  };
}

/** The digest, or the error it throws: the two ways must agree on both. */
function outcome(record: AuditRecord): string {
  try {
    return entryDigest(record).toString('hex');
  } catch (error) {
    return `throws ${(error as Error).name}`;
  }
}

describe('the entry digest made from the payload value', () => {
  it('equals the digest made from its JSON text, parsed back (property)', () => {
    const value = fc.anything({
      maxDepth: 3,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withSparseArray: true,
      withTypedArray: true,
      withBigInt: true,
      withUnicodeString: true,
    });
    fc.assert(
      fc.property(value, value, (changes, metadata) => {
        const direct = { ...base, changes, metadata };
        expect(outcome(direct)).toBe(outcome({ ...base, changes: viaText(changes), metadata: viaText(metadata) }));
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['-0', -0],
    ['a huge number', 1e21],
    ['a tiny number', 5e-324],
    ['NaN', Number.NaN],
    ['a Date', new Date(0)],
    ['a boxed string', Object('ab') as unknown],
    // eslint-disable-next-line no-sparse-arrays -- the hole is the case
    ['an array with a hole', [1, , 3]],
    ['a member that is undefined', { a: undefined, b: 1 }],
    ['a __proto__ key', JSON.parse('{"__proto__": {"x": 1}, "é": 2, "zz": 3}') as unknown],
    ['text to escape', { 'k"\\': 'line\nbreak "quoted" \u2028' }],
  ])('agrees on %s', (_name, changes) => {
    expect(outcome({ ...base, changes })).toBe(outcome({ ...base, changes: viaText(changes) }));
  });
});

describe('the entry code', () => {
  it('is HMAC-SHA256 of the digest, for any secret and entry (property)', () => {
    const normalizer = new AuditEntryNormalizer([], 65536);
    fc.assert(
      fc.property(fc.string({ minLength: 32, maxLength: 200 }), fc.jsonValue({ maxDepth: 2 }), (secret, changes) => {
        const [key] = resolveEntryKeys([{ id: 'k1', secret }]);
        const record = normalizer.normalize({ action: 'nda_updated', changes }).record;
        const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(entryDigest(record)).digest('base64url');
        expect(signEntry(record, key)).toBe(`v1:k1:${expected}`);
      }),
      { numRuns: 300 },
    );
  });
});
