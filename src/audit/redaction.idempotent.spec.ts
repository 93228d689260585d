import { compileRedactor, DEFAULT_REDACT_KEYS, redactText } from './redaction';

// Redacting a redacted text changes nothing: an entry's text is redacted again where it is read
// back (a spooled or buffered line replayed, an export re-imported). docs/FAILURES.md "Safe
// output": after an auth scheme "the credential goes and a known scheme's name stays", and a value
// is read "on across a folded header line".
const isRedacted = compileRedactor(DEFAULT_REDACT_KEYS);
const SECRET = 'S3CRETdoNotLog';

describe('redaction is idempotent', () => {
  it.each([
    ['a Digest header folded after its scheme', 'Authorization: Digest\r\n username="ops", response="6629fae49393a05397450978507c4ef1"'],
    ['a Basic header folded after its scheme', 'Authorization: Basic\n dXNlcjpwYXNzd29yZA=='],
  ])('%s', (_label, text) => {
    const once = redactText(text, isRedacted);
    expect(once).not.toContain('6629fae4');
    expect(once).not.toContain('dXNlcjpw');
    expect(redactText(once, isRedacted)).toBe(once);
  });

  // Every combination of a key, a separator and a value shape the free-text reading knows: the
  // secret goes on the first pass, and the second pass changes nothing.
  const keys = [
    'password',
    '"password"',
    '\\"password\\"',
    'API Key',
    '"Private Key"',
    'Key (token)',
    'Authorization',
    'Cookie',
    'x-auth',
    'DB_PASS',
    '--password',
  ];
  const separators = ['=', ': ', ' => ', '            = ', ':\t\t\t\t\t\t\t\t\t\t', '=\r\n ', ' := '];
  const values = [
    SECRET,
    `"${SECRET}"`,
    `'it''s ${SECRET}'`,
    `\\"${SECRET}\\"`,
    `(${SECRET})`,
    `[1, "${SECRET}"]`,
    `{"a": "${SECRET}"}`,
    `Basic ${SECRET}`,
    `Digest\r\n username="ops", response="${SECRET}"`,
    `Bearer ${SECRET}xyz`,
    `${SECRET}\r\n continued`,
  ];
  const shapes = keys.flatMap((key) => separators.flatMap((separator) => values.map((value) => `x ${key}${separator}${value} tail`)));

  it(`holds for ${shapes.length} key, separator and value shapes`, () => {
    const failures = shapes.filter((text) => {
      const once = redactText(text, isRedacted);
      return once.includes(SECRET) || redactText(once, isRedacted) !== once;
    });
    expect(failures).toEqual([]);
  });

  // An Authorization header's value is the rest of its line and of its folded lines; a Cookie
  // header's is every cookie of it, a quoted one read to its closing quote or its line's end.
  const headerShapes = [
    ...['Authorization', 'Proxy-Authorization', '"Authorization'].flatMap((key) =>
      [': ', ':\t', '=', ':\r\n '].flatMap((separator) =>
        [
          `AWS AKIAIOSFODNN7EXAMPLE:${SECRET}`,
          `SharedKey myaccount:${SECRET}`,
          `Custom realm ${SECRET}`,
          `Digest username="ops", response = "${SECRET}"`,
          `Digest username=\\"ops\\", response=\\"${SECRET}\\"`,
          `Basic dXNlcjpw\r\n ${SECRET}`,
          `Basic\r\n\t${SECRET}`,
          `${SECRET} (from env)`,
        ].map((value) => `x ${key}${separator}${value}" tail`),
      ),
    ),
    ...['Cookie', 'Set-Cookie'].flatMap((key) =>
      [
        `sid="${SECRET}`,
        `sid="${SECRET}\nHost: x`,
        `a=1; sid="${SECRET} x"; b=2`,
        `sid=\\"${SECRET}`,
        `a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly, sid=${SECRET}; Path=/`,
        `a=1, sid=${SECRET}\r\n b=${SECRET}\r\nHost: x`,
      ].map((value) => `x ${key}: ${value}`),
    ),
  ];

  it(`holds for ${headerShapes.length} Authorization and Cookie header shapes`, () => {
    const failures = headerShapes.filter((text) => {
      const once = redactText(text, isRedacted);
      return once.includes(SECRET) || redactText(once, isRedacted) !== once;
    });
    expect(failures).toEqual([]);
  });

  it.each([
    ['a URL password', `postgres://ops:${SECRET}@db/app?at=10:30`],
    ['a bearer token', `sent Bearer ${SECRET} upstream`],
    ['every cookie of a Cookie header', `Cookie: a=${SECRET}; b=${SECRET}`],
    ['two keys on one line', `user=ann password=${SECRET} token=${SECRET}`],
    ['a URL password holding a quote', `postgres://ops:it's-${SECRET}@db/app`],
    ['a quoted URL', `psql 'postgres://ops:${SECRET}@db/app'`],
    ['a list of URLs', `redis://:${SECRET}@h1,redis://:${SECRET}@h2 and x://a&postgres://u:${SECRET}@h`],
    ['a cookie whose quoted value is never closed', `Cookie: sid="${SECRET}`],
    ['a key detail of a quoted column', `Key ("apiToken")=(${SECRET}) already exists.`],
    ['a key detail of an expression', `Key (lower(token))=(${SECRET}) already exists.`],
    ['a key detail whose value holds a parenthesis', `Key (password)=(a)${SECRET}) already exists.`],
    ['an exclusion detail', `Key (token_span)=([1,${SECRET})) conflicts with existing key (token_span)=([2,${SECRET})).`],
    ['a key detail over two lines', `Key (token)=(a\n${SECRET}) already exists.`],
    ['a failing row', `Failing row contains (1, ${SECRET}, null).`],
    ['a failing row cut short', `Failing row contains (1, a)\n${SECRET}`],
    ['a PEM private key', `-----BEGIN EC PRIVATE KEY-----\n${SECRET}\n-----END EC PRIVATE KEY-----\n`],
    ['a PEM private key without its END line', `-----BEGIN PRIVATE KEY-----\n${SECRET}`],
    ['command-line options', `cli --password ${SECRET} --db-pass "${SECRET} x" --api-token '${SECRET}`],
    ['URL-encoded fields', `next=%2Fx%3Fpin%3D${SECRET}%26password%253D${SECRET}%2526a%3Db`],
    ['a name ending in a secret word', `DB_PASS=${SECRET} SMTP_PASS: "${SECRET}"`],
    ['Set-Cookie lines joined', `Set-Cookie: a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT, b=${SECRET}\nHost: x`],
  ])('holds for %s', (_label, text) => {
    const once = redactText(text, isRedacted);
    expect(once).not.toContain(SECRET);
    expect(redactText(once, isRedacted)).toBe(once);
  });
});
