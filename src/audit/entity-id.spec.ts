import { AuditEntryNormalizer, storedId } from './audit-entry';
import { canonicalEntityId, legacyEntityIdSpellings } from './entity-id';

const LOWER = '0193a1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f';

describe('canonicalEntityId', () => {
  it('writes a UUID in lower case, in any case it was given', () => {
    expect([LOWER.toUpperCase(), '0193A1C2-7b3e-7C4D-8e5f-0A1B2C3D4E5F', LOWER].map(canonicalEntityId)).toEqual([LOWER, LOWER, LOWER]);
  });

  it.each([
    ['a text id', 'ORDER-42'],
    ['a UUID without hyphens (could be any 32 hex digits)', '0193A1C27B3E7C4D8E5F0A1B2C3D4E5F'],
    ['a UUID in braces', `{${LOWER.toUpperCase()}}`],
    ['a UUID with text around it', `${LOWER.toUpperCase()}-X`],
    ['a UUID of non-hex letters', 'G193A1C2-7B3E-7C4D-8E5F-0A1B2C3D4E5F'],
  ])('keeps %s as it is', (_what, id) => {
    expect(canonicalEntityId(id)).toBe(id);
  });

  it('is how a row stores the id and an erasure looks it up', () => {
    const normalizer = new AuditEntryNormalizer([], 64 * 1024);
    expect(normalizer.normalize({ action: 'a', entityType: 'NDA', entityId: LOWER.toUpperCase() }).record.entityId).toBe(LOWER);
    expect(storedId('entityId', LOWER.toUpperCase())).toBe(LOWER);
    expect(storedId('entityType', 'NDA')).toBe('NDA');
  });
});

describe('legacyEntityIdSpellings', () => {
  it('names the spelling given and capitals, apart from the lower case', () => {
    expect(legacyEntityIdSpellings(LOWER)).toEqual([LOWER.toUpperCase()]);
    expect(legacyEntityIdSpellings(LOWER.toUpperCase())).toEqual([LOWER.toUpperCase()]);
    const mixed = `0193A1C2${LOWER.slice(8)}`;
    expect(legacyEntityIdSpellings(mixed)).toEqual([mixed, LOWER.toUpperCase()]);
    expect(legacyEntityIdSpellings('ORDER-42')).toEqual([]);
  });
});
