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

  // One input for each rule of the free-text reading: a long run of what the rule reads on.
  it.each([
    ['URL user info of many "@" and ":"', () => `x://u:${'p@:'.repeat(SIZE / 3)}`],
    ['many URL starts', () => 'a://u:p@'.repeat(SIZE / 8)],
    ['a key quoted behind many backslashes', () => `password${'\\'.repeat(SIZE)}":x`],
    ['a value of backslashes and quotes', () => `password="${'\\\\"'.repeat(SIZE / 3)}`],
    ['a value encoded twice, never closed', () => `\\"password\\":\\"${'\\\\\\"'.repeat(SIZE / 4)}`],
    ['nested brackets, never closed', () => `secret=${'[{"a":'.repeat(SIZE / 6)}`],
    ['many secret keys, each before a bracket', () => 'token=['.repeat(SIZE / 7)],
    ['a credential of auth-params', () => `Authorization: Digest ${'a=b, '.repeat(SIZE / 5)}`],
    ['auth-params quoted, never closed', () => `Authorization: Digest ${'a="b\\", '.repeat(SIZE / 8)}`],
    ['a long credential', () => `Authorization: Basic ${'QUJD'.repeat(SIZE / 4)}`],
    ['many Authorization headers, each a word', () => 'Authorization: x '.repeat(SIZE / 17)],
    ['a cookie list', () => `Cookie: ${'a=b; '.repeat(SIZE / 5)}`],
    ['many Cookie headers, each empty', () => 'cookie:;'.repeat(SIZE / 8)],
    ['a value folded on many lines', () => `token: a${'\r\n b'.repeat(SIZE / 4)}`],
    ['many secret pairs, each closed', () => 'token=[1] password="a\\"b" Cookie: a=1; '.repeat(SIZE / 38)],
    ['lines each almost a key', () => `token: a${`\n ${'k'.repeat(60)}`.repeat(SIZE / 62)}`],
  ])('redacts a body string of 200k characters: %s', (_label, make) => {
    const value = make();
    expect(value.length).toBeGreaterThan(SIZE * 0.9);
    expect(elapsedMs(() => normalizer.normalize({ action: 'a', changes: { note: value } }))).toBeLessThan(1000);
  });
});
