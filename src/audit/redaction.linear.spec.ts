import { AuditEntryNormalizer } from './audit-entry';
import { AUDIT_DEFAULTS } from './audit-options';

// The key matcher and the free-text redaction read a client's body in time linear in its size.
const SIZE = 200_000;
const elapsedMs = (run: () => unknown): number => {
  const start = performance.now();
  run();
  return performance.now() - start;
};

describe('redaction reads a 200k-character input within 1 s', () => {
  const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, 64 * 1024);

  it('matches a body key of 200k capital letters against the default keys', () => {
    const key = 'A'.repeat(SIZE);
    expect(elapsedMs(() => normalizer.normalize({ action: 'a', changes: { [key]: 1 } }))).toBeLessThan(1000);
  });

  it('redacts a body string of 200k characters like a URL scheme with no "://" (a-a-a-…=)', () => {
    const value = `${'a-'.repeat(SIZE / 2)}=`;
    expect(elapsedMs(() => normalizer.normalize({ action: 'a', changes: { note: value } }))).toBeLessThan(1000);
  });
});
