import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { entryDigest, jsonbText } from './entry-encoding';

// entryDigest takes shortcuts: field lengths counted in characters when the whole encoding is
// ASCII, key orders remembered per shape of object, texts written unescaped when the payload's
// JSON text has no backslash, the time's microseconds remembered. These hold it to the encoding
// written the plain way, on hostile values.

/** The version-1 encoding written the plain way: each field measured in UTF-8 bytes, each payload from its JSON text. */
function plainEncoding(record: AuditRecord): string {
  const payload = (value: unknown): string | null =>
    value === null || value === undefined ? null : jsonbText(JSON.parse(JSON.stringify(value)) as unknown);
  const ms = Date.parse(record.occurredAt);
  const fields = [
    record.id.toLowerCase(),
    ms === 0 ? '0' : `${ms}000`,
    record.action,
    record.entityType,
    record.entityId,
    record.userId,
    record.outcome,
    record.ip,
    record.userAgent,
    record.requestId,
    payload(record.changes),
    payload(record.metadata),
  ];
  return `audit-entry-v1${fields.map((f) => (f === null ? '~' : `${Buffer.byteLength(f, 'utf8')}:${f}`)).join('')}`;
}

const plainDigest = (record: AuditRecord) => createHash('sha256').update(plainEncoding(record), 'utf8').digest('hex');

const base: AuditRecord = {
  id: '0193A1C2-0000-7000-8000-000000000001',
  occurredAt: '2026-12-05T04:00:00.123Z',
  action: 'nda_created',
  entityType: 'NDA',
  entityId: 'n-1',
  userId: 'u-1',
  outcome: 'success',
  ip: '10.0.0.1',
  userAgent: 'Mozilla/5.0',
  requestId: 'r-1',
  changes: { title: 'NDA' },
  metadata: null,
};

function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value, i] : { [`k${i % 3}`]: value, a: -0 };
  return value;
}

const HOSTILE: [string, Partial<AuditRecord>][] = [
  ['all ASCII', {}],
  ['a text field not ASCII', { userAgent: 'Grüße 👩‍👩‍👧 €' }],
  ['a NUL and a lone surrogate in text fields', { action: 'a\u0000b', requestId: 'x\ud800y', userId: '\udc00' }],
  ['a payload text not ASCII, nothing to escape', { changes: { title: 'Grüße', emoji: '😀', separator: '\u2028', del: '\x7f' } }],
  ['payload texts JSON escapes', { changes: { quote: 'a"b', backslash: 'a\\b', line: 'a\nb', nul: 'a\u0000b', ctrl: '\u0001\u001f' } }],
  ['a lone surrogate in a payload text', { changes: { lone: 'x\ud800y', pair: '\ud83d\ude00' } }],
  ['keys to escape or not ASCII', { changes: { 'k"': 1, 'k\\': 2, 'a\n': 3, '\u0000': 4, é: 5, '😀': 6, zz: 7, z: 8 } }],
  [
    'numbers jsonb rewrites',
    { changes: { big: 1e21, negBig: -1.5e21, zero: -0, tiny: 5e-324, small: -1.5e-7, huge: 1.7976931348623157e308, ratio: 0.1 + 0.2 } },
  ],
  ['deep nesting', { changes: nested(200), metadata: nested(31) }],
  ['an object of more than 32 keys', { metadata: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`key${(i * 7) % 40}`, i])) }],
  ['keys longer than a kept shape may hold', { changes: { ['k'.repeat(2000)]: 1, b: { ['é'.repeat(600)]: 'x' } } }],
  ['empty containers', { changes: { a: {}, b: [], c: [{}, []] }, metadata: [] }],
  ['texts alone as the payload', { changes: 'plain', metadata: 'with "quotes"' }],
  ['no payload', { changes: null, metadata: undefined as unknown as null }],
  ['the epoch and a year before it', { occurredAt: '1970-01-01T00:00:00.000Z', changes: { t: 1 } }],
  ['a time before the epoch', { occurredAt: '0500-02-03T04:05:06.789Z' }],
];

describe('the entry digest, held to the encoding written the plain way', () => {
  it.each(HOSTILE)('agrees on %s', (_name, over) => {
    const record = { ...base, ...over };
    expect(entryDigest(record).toString('hex')).toBe(plainDigest(record));
  });

  it.each(HOSTILE)('agrees on %s, the record made by normalize()', (_name, over) => {
    const normalizer = new AuditEntryNormalizer([], 1024 * 1024);
    const record = normalizer.normalize({ ...over, action: over.action ?? 'nda_created', occurredAt: undefined } as never).record;
    expect(entryDigest(record).toString('hex')).toBe(plainDigest(record));
  });

  it('agrees on objects of one shape with other values, and on the same keys in other orders', () => {
    const records = [
      { ...base, changes: { b: 'x', a: 1, cc: [true] } },
      { ...base, changes: { b: 'y"', a: 2, cc: [false] } },
      { ...base, changes: { a: 3, cc: null, b: 'z' } },
      { ...base, changes: { cc: 'é', b: 'z', a: 4 } },
    ];
    for (const record of records) expect(entryDigest(record).toString('hex')).toBe(plainDigest(record));
  });

  it('agrees when many shapes share a first key and past the bound on shapes kept', () => {
    for (let i = 0; i < 1200; i++) {
      const record = { ...base, changes: { id: i, [`k${i % 40}`]: 'v', [`z${i % 7}`]: [i] }, metadata: { [`m${i}`]: { n: i } } };
      expect(entryDigest(record).toString('hex')).toBe(plainDigest(record));
    }
  });

  it('writes objects with one first key and as many keys, but others, from the value, never through their JSON text', () => {
    const parse = jest.spyOn(JSON, 'parse');
    try {
      for (const changes of [
        { id: 1, title: 'a' },
        { id: 2, state: 'b' },
        { id: 3, title: 'c' },
      ]) {
        const record = { ...base, changes };
        parse.mockClear();
        const digest = entryDigest(record).toString('hex');
        expect(parse).not.toHaveBeenCalled();
        expect(digest).toBe(plainDigest(record));
      }
    } finally {
      parse.mockRestore();
    }
  });

  it('agrees on arbitrary records, texts with any code unit (property)', () => {
    const text = fc.option(fc.string({ unit: 'binary', maxLength: 30 }), { nil: null });
    const payload = fc.oneof(
      fc.constant(null),
      fc.jsonValue({ maxDepth: 4 }),
      fc.object({
        maxDepth: 3,
        key: fc.string({ unit: 'binary', maxLength: 6 }),
        values: [fc.string({ unit: 'binary' }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null)],
      }),
    );
    const record = fc.record({
      action: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
      entityType: text,
      entityId: text,
      userId: text,
      ip: text,
      userAgent: text,
      requestId: text,
      changes: payload,
      metadata: payload,
      occurredAt: fc
        .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true })
        .map((d) => d.toISOString()),
    });
    fc.assert(
      fc.property(record, (over) => {
        const r = { ...base, ...over } as AuditRecord;
        expect(entryDigest(r).toString('hex')).toBe(plainDigest(r));
      }),
      { numRuns: 2000 },
    );
  });
});
