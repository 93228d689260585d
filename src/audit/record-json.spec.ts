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
