import fc from 'fast-check';
import { type AuditRecord, AuditEntryNormalizer } from './audit-entry';
import { normalizedRecordBytes, payloadJson, recordBytes, splitRecordBytes } from './record-json';

describe('record JSON made once', () => {
  const normalizer = new AuditEntryNormalizer(['password'], 4096);

  it('measures a record as JSON.stringify would, and gives the payload text JSON.stringify gives', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.string(), (changes, metadata, action) => {
        const { record, bytes } = normalizer.normalize({ action, changes, metadata });
        expect(bytes).toBe(Buffer.byteLength(JSON.stringify(record)));
        expect(recordBytes(record)).toBe(bytes);
        if (!record.authCode) expect(normalizedRecordBytes(record)).toBe(bytes);
        expect(payloadJson(record)).toEqual({
          changes: record.changes === null ? null : JSON.stringify(record.changes),
          metadata: record.metadata === null ? null : JSON.stringify(record.metadata),
        });
      }),
      { numRuns: 300 },
    );
  });

  it('measures text fields and keys JSON escapes or writes in several bytes as JSON.stringify does', () => {
    // JSON's edges: control characters, `"`, `\\`, DEL, the first and last plain ones, non-ASCII, emoji, lone surrogates.
    const hostile = fc.string({
      unit: fc.constantFrom(
        'a',
        ' ',
        '~',
        '!',
        '#',
        '[',
        ']',
        '"',
        '\\',
        '\x00',
        '\x1f',
        '\x7f',
        '\x80',
        'é',
        '€',
        '😀',
        '\ud800',
        '\udfff',
      ),
      maxLength: 12,
    });
    const fields = ['id', 'occurredAt', 'action', 'entityType', 'entityId', 'userId', 'outcome', 'ip', 'userAgent', 'requestId'] as const;
    fc.assert(
      fc.property(fc.tuple(...fields.map(() => fc.option(hostile))), hostile, (values, key) => {
        const record = Object.fromEntries(fields.map((field, i) => [field, values[i]])) as unknown as AuditRecord;
        Object.assign(record, { changes: { [key]: key }, metadata: null });
        expect(recordBytes(record)).toBe(Buffer.byteLength(JSON.stringify(record)));
        expect(normalizedRecordBytes(record)).toBe(Buffer.byteLength(JSON.stringify(record)));
        const keyed = { ...record, [key]: key } as AuditRecord;
        expect(recordBytes(keyed)).toBe(Buffer.byteLength(JSON.stringify(keyed)));
        // As the privacy split leaves a record: its two texts last (a `personal` text holds escaped JSON).
        const split = {
          ...record,
          personal: `{"salt":"s","values":[[["changes","k"],${JSON.stringify(key)}]]}`,
          commitments: key,
        } as AuditRecord;
        expect(splitRecordBytes(split)).toBe(Buffer.byteLength(JSON.stringify(split)));
      }),
      { numRuns: 1000 },
    );
  });

  it('measures a split record whose actor id a pseudonym function made something other than text as JSON.stringify does', () => {
    const { record } = normalizer.normalize({ action: 'nda_created', changes: { title: 'T' } });
    const split = { ...record, userId: { id: 'p"1' }, personal: '{"salt":"s","values":[]}', commitments: '[]' } as unknown as AuditRecord;
    expect(splitRecordBytes(split)).toBe(Buffer.byteLength(JSON.stringify(split)));
  });

  it('keeps the text it made out of the record as the record is seen, copied and serialized', () => {
    const { record } = normalizer.normalize({ action: 'nda_created', changes: { title: 'T' } });
    const json = payloadJson(record);
    expect(Object.keys(record)).toEqual(Object.keys(normalizer.normalize({ action: 'x' }).record));
    expect(JSON.parse(JSON.stringify(record))).toEqual(record);
    expect(payloadJson({ ...record, changes: { title: 'U' } }).changes).toBe('{"title":"U"}');
    expect(payloadJson(record)).toBe(json);
  });

  it('serializes a frozen record at each use, the same way', () => {
    const { record } = normalizer.normalize({ action: 'nda_created', changes: { title: 'T' } });
    const frozen = Object.freeze({ ...record });
    expect(payloadJson(frozen)).toEqual({ changes: '{"title":"T"}', metadata: null });
    expect(recordBytes(frozen)).toBe(Buffer.byteLength(JSON.stringify(frozen)));
  });

  it('serializes a record once, however often its payload is asked for', () => {
    const { record } = normalizer.normalize({ action: 'nda_created', changes: { title: 'T' } });
    const stringify = jest.spyOn(JSON, 'stringify');
    try {
      payloadJson(record);
      payloadJson(record);
      expect(stringify).not.toHaveBeenCalled();
    } finally {
      stringify.mockRestore();
    }
  });
});
