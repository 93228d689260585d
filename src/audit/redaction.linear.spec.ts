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
    ['many words of 64 characters before a key', () => `${'w'.repeat(64)} `.repeat(SIZE / 65) + 'Key: x'],
    ['many two-word keys, each before a separator', () => 'API Key: '.repeat(SIZE / 9)],
    ['many "=>" separators', () => '"password"=>'.repeat(SIZE / 12)],
    ['keys each followed by 64 spaces and no separator', () => `${`k${' '.repeat(64)}`.repeat(SIZE / 65)}: x`],
    ['a key before 200k spaces', () => `password${' '.repeat(SIZE)}=x`],
    ['many PostgreSQL key details, each never closed', () => 'Key (token)=('.repeat(SIZE / 13)],
    ['many column lists closed, none opened', () => 'a, b)='.repeat(SIZE / 6)],
    ['many column lists of 250 characters', () => `(${'c, '.repeat(83)}d)=1 `.repeat(SIZE / 256)],
    ['parentheses nested, never closed', () => `token=${'('.repeat(SIZE)}`],
    ['a quoted value of doubled quotes, never closed', () => `password='${"''".repeat(SIZE / 2)}`],
    ['many URL starts, each ending at a query', () => 'a://u:p?@'.repeat(SIZE / 9)],
    ['many folded Authorization headers', () => 'Authorization: Digest\r\n '.repeat(SIZE / 24)],
    ['many key details of quoted columns, never closed', () => 'Key ("apiToken")=('.repeat(SIZE / 18)],
    ['many key details, each closed by no end PostgreSQL writes', () => 'Key (token)=(a) '.repeat(SIZE / 16)],
    ['a key detail whose value is many parentheses', () => `Key (token)=(${')'.repeat(SIZE)}`],
    ['a key detail whose value runs on many lines, each closed by no ending', () => `Key (token)=(${'a)\n'.repeat(SIZE / 3)}`],
    ['many key details on many lines, each closed by no ending', () => 'Key (token)=(a)\r\n'.repeat(SIZE / 17)],
    ['many column lists of expressions, no secret', () => '(lower(a), "b")=('.repeat(SIZE / 17)],
    ['many key details with no column list', () => 'token)=('.repeat(SIZE / 8)],
    ['a column list of 250 quoted names, many times', () => `(${'"c", '.repeat(50)}d)=(x) `.repeat(SIZE / 256)],
    ['a column list of 200k characters', () => `Key (${'c, '.repeat(SIZE / 3)}token)=(x) already exists.`],
    ['many column lists opened, one closed at the end', () => `${'Key ('.repeat(SIZE / 5)}token)=(x)`],
    ['many key details, each opened far back', () => `(${'c, '.repeat(SIZE / 6)}d)=(x) `.repeat(2)],
    ['many key details of parentheses, each nested deep', () => `${'('.repeat(SIZE / 2)}${')=('.repeat(SIZE / 6)}`],
    ['an Authorization value folded on many lines', () => `Authorization: Custom a${'\r\n b'.repeat(SIZE / 4)}`],
    ['many Authorization headers, each quoted', () => '"Authorization: x y" '.repeat(SIZE / 21)],
    ['an Authorization value of backslashes', () => `Authorization: x${'\\'.repeat(SIZE)}`],
    ['an Authorization value of apostrophes in words', () => `Authorization: x${"a'".repeat(SIZE / 2)}`],
    ['many Authorization headers, each closed by a bracket', () => 'Authorization: x)'.repeat(SIZE / 17)],
    ['auth-params with spaces around "="', () => `Authorization: Digest ${'a = "b", '.repeat(SIZE / 10)}`],
    ['auth-params with spaces around "=" under another key', () => `x-auth: Digest ${'a = b, '.repeat(SIZE / 7)}`],
    ['many credentials of key ids and signatures', () => 'x-auth: AWS a:b:c '.repeat(SIZE / 18)],
    ['many folded lines, each a header of its own', () => 'Authorization: Basic\r\n Host: x'.repeat(SIZE / 29)],
    ['many cookies quoted, never closed', () => 'Cookie: a="'.repeat(SIZE / 11)],
    ['many cookies quoted, each line never closed', () => 'Cookie: a="b\n'.repeat(SIZE / 13)],
    [
      'a Set-Cookie line of many cookies joined by ", "',
      () => `Set-Cookie: ${'a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT, '.repeat(SIZE / 45)}`,
    ],
    ['many Set-Cookie headers, each a folded line', () => 'Set-Cookie: a=1\r\n b="c\r\n'.repeat(SIZE / 24)],
    ['URL user info of apostrophes', () => `x://u:${"'".repeat(SIZE)}@h`],
    ['many URLs quoted by apostrophes, doubled ones inside', () => "'a://u:p''@".repeat(SIZE / 11)],
    ['many ":=" separators', () => 'password := '.repeat(SIZE / 12)],
    ['many URLs, each running into the next', () => 'a://u:p@h,'.repeat(SIZE / 10)],
    ['many URLs of long schemes, each running into the next', () => `${'s'.repeat(60)}://h,`.repeat(SIZE / 65)],
    ['many failing rows, never closed', () => 'Failing row contains ('.repeat(SIZE / 22)],
    ['a failing row of many parentheses, closed by no ending', () => `Failing row contains (${')'.repeat(SIZE)}`],
    ['many failing rows, each closed by no ending', () => 'failing row contains (a) '.repeat(SIZE / 25)],
    ['many PEM private keys, each ended', () => '-----BEGIN PRIVATE KEY-----x-----END PRIVATE KEY-----'.repeat(SIZE / 53)],
    ['many PEM BEGIN lines, none ended', () => '-----BEGIN RSA PRIVATE KEY-----'.repeat(SIZE / 31)],
    ['many BEGIN lines, each almost a private key', () => `-----BEGIN ${'A '.repeat(20)}PRIVATE KE`.repeat(SIZE / 64)],
    ['many secret command-line options, each a word', () => '--password x '.repeat(SIZE / 13)],
    ['many secret command-line options, each quoted, never closed', () => '--token "'.repeat(SIZE / 9)],
    ['a secret command-line option before many dashes', () => `--password ${'-'.repeat(SIZE)}`],
    ['many URL-encoded separators', () => 'password%3D'.repeat(SIZE / 11)],
    ['a URL-encoded value of many escapes', () => `password%3D${'%25'.repeat(SIZE / 3)}`],
    ['many keys after escapes', () => '%3Fpin%3D1'.repeat(SIZE / 10)],
    ['many names of many words, each ending in a secret word', () => `${'a_'.repeat(30)}pass=1 `.repeat(SIZE / 67)],
  ])('redacts a body string of 200k characters: %s', (_label, make) => {
    const value = make();
    expect(value.length).toBeGreaterThan(SIZE * 0.9);
    expect(elapsedMs(() => normalizer.normalize({ action: 'a', changes: { note: value } }))).toBeLessThan(1000);
  });
});
