import { type AuditRecord } from '../audit-entry';
import { resolveEntryKeys, signEntry } from './entry-auth';
import { EntryChecks } from './entry-checks';
import { ENTRY_DIGEST_SQL, entryDigest } from './entry-encoding';
import { type Seal } from './seal';
import { type Anomaly } from './verifier';

const [KEY] = resolveEntryKeys([{ id: 'k1', secret: 'a-secret-of-at-least-thirty-two-characters' }]);
const record: AuditRecord = {
  id: '01937a4c-0000-7000-8000-00000000000a',
  occurredAt: '2026-12-04T10:00:00.000Z',
  action: 'nda_created',
  entityType: 'NDA',
  entityId: 'nda-1',
  userId: 'u1',
  outcome: 'success',
  ip: null,
  userAgent: null,
  requestId: null,
  changes: { title: 'NDA' },
  metadata: null,
};
const seal = (seq: number, entryAuthFrom?: string | null) => ({ seq, entryAuthFrom }) as Seal;

describe('EntryChecks', () => {
  it('checks codes only when keys are given, and selects the digest only where the row fields are read', () => {
    for (const keys of [null, []]) {
      const checks = new EntryChecks(keys);
      expect(checks.report).toEqual({ checked: false, boundary: null, authentic: 0, beforeAuthentication: 0, unchecked: 0 });
      expect(checks.needsLeafFields).toBe(false);
      expect(checks.columns(true)).toBe(', l.auth_code IS NOT NULL');
    }
    const checks = new EntryChecks([KEY]);
    expect(checks.report.checked).toBe(true);
    expect(checks.needsLeafFields).toBe(true);
    expect(checks.columns(true)).toBe(`, l.auth_code, ${ENTRY_DIGEST_SQL}`);
    expect(checks.columns(false)).toBe(', l.auth_code IS NOT NULL');
  });

  it('takes the boundary from the first seal that records one, and names a later seal that drops or moves it', () => {
    const found: Anomaly[] = [];
    const checks = new EntryChecks(null);
    checks.seal(seal(1), (a) => found.push(a));
    checks.seal(seal(2, null), (a) => found.push(a));
    expect(checks.report.boundary).toBeNull();
    checks.seal(seal(3, '812'), (a) => found.push(a));
    checks.seal(seal(4, '812'), (a) => found.push(a));
    expect(checks.report.boundary).toBe('812');
    expect(found).toEqual([]);
    checks.seal(seal(5, '900'), (a) => found.push(a));
    checks.seal(seal(6, null), (a) => found.push(a));
    checks.seal(seal(7), (a) => found.push(a));
    expect(found).toEqual([
      { kind: 'seal_changed', seal: 5, detail: "its entry-authentication boundary (900) is not seal 3's (812)" },
      { kind: 'seal_changed', seal: 6, detail: "its entry-authentication boundary (none) is not seal 3's (812)" },
      { kind: 'seal_changed', seal: 7, detail: "its entry-authentication boundary (none) is not seal 3's (812)" },
    ]);
    expect(checks.report.boundary).toBe('812');
  });

  it('without keys: counts rows with a code as unchecked, rows without one before the boundary as legacy, after it as forged', () => {
    const checks = new EntryChecks(null);
    expect(checks.judge('r1', 900n, [true])).toBeNull();
    expect(checks.judge('r2', 900n, [false])).toBeNull();
    checks.seal(seal(1, '812'), () => undefined);
    expect(checks.judge('r3', 800n, [false])).toBeNull();
    expect(checks.judge('r4', null, [false])).toBeNull();
    expect(checks.judge('r5', 812n, [false])).toEqual({
      kind: 'row_forged',
      row: 'r5',
      detail: 'it carries no entry code, and was written after entry authentication began (tx 812)',
    });
    expect(checks.report).toEqual({ checked: false, boundary: '812', authentic: 0, beforeAuthentication: 3, unchecked: 1 });
  });

  it('with keys: counts a row whose code its key made over the stored fields as authentic, and names any other', () => {
    const checks = new EntryChecks([KEY]);
    const digest = entryDigest(record);
    const code = signEntry(record, KEY);
    expect(checks.judge('r1', 900n, [code, digest])).toBeNull();
    expect(checks.judge('r2', 900n, [code, entryDigest({ ...record, action: 'nda_deleted' })])).toEqual({
      kind: 'row_forged',
      row: 'r2',
      detail: 'its entry code does not match its content',
    });
    expect(checks.judge('r3', 900n, [null, digest])).toBeNull();
    // A row read without its fields (one value: whether it has a code) is not checked.
    expect(checks.judge('r4', 900n, [true])).toBeNull();
    expect(checks.report).toEqual({ checked: true, boundary: null, authentic: 1, beforeAuthentication: 1, unchecked: 1 });
  });
});
