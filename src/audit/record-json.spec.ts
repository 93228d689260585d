import fc from 'fast-check';
import { AuditEntryNormalizer } from './audit-entry';
import { payloadJson, recordBytes } from './record-json';

describe('record JSON made once', () => {
  const normalizer = new AuditEntryNormalizer(['password'], 4096);

  it('measures a record as JSON.stringify would, and gives the payload text JSON.stringify gives', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.string(), (changes, metadata, action) => {
        const { record, bytes } = normalizer.normalize({ action, changes, metadata });
        expect(bytes).toBe(Buffer.byteLength(JSON.stringify(record)));
        expect(recordBytes(record)).toBe(bytes);
        expect(payloadJson(record)).toEqual({
          changes: record.changes === null ? null : JSON.stringify(record.changes),
          metadata: record.metadata === null ? null : JSON.stringify(record.metadata),
        });
      }),
      { numRuns: 300 },
    );
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
