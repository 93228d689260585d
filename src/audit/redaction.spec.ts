import fc from 'fast-check';
import { AuditEntryNormalizer } from './audit-entry';
import { AUDIT_DEFAULTS } from './audit-options';
import { convertJsonSafe, REDACTED } from './json-safe';
import { compileRedactor, DEFAULT_REDACT_KEYS, redactText } from './redaction';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// Default redaction as a user sees it in the stored record: the secrets under common keys go, the
// ordinary fields whose names merely contain a short secret word stay.
const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, 64 * 1024);
const SECRET = 'S3CRET-do-not-log';
const changesOf = (changes: unknown) => normalizer.normalize({ action: 'a', changes }).record.changes;

describe('default redaction', () => {
  const secretKeys = [
    'pwd',
    'mysql_pwd',
    'auth',
    'x-auth',
    'authToken',
    'jwt',
    'otp',
    'otpCode',
    'pin',
    'userPin',
    'PIN',
    'PINCode',
    'session',
    'sessionId',
    'connect.sid',
    'PHPSESSID',
    'ssn',
    'user_ssn',
    'XSRF-TOKEN',
    '_csrf',
    'samlResponse',
    'bearer',
    'password',
    'DB_PASSWD',
    'accessToken',
    'Api-Key',
    'private_key',
    'client_secret',
    'credentials',
    'Authorization',
    'set-cookie',
  ];
  const ordinaryKeys = [
    'shipping',
    'shippingAddress',
    'author',
    'authorName',
    'opinion',
    'spinner',
    'businessName',
    'inside',
    'sidebar',
    'footprint',
    'title',
    'counterparty',
    'primaryKey',
  ];

  it.each(secretKeys)('redacts %s', (key) => {
    expect(changesOf({ [key]: SECRET, title: 't' })).toEqual({ [key]: REDACTED, title: 't' });
  });

  it.each(ordinaryKeys)('keeps %s', (key) => {
    expect(changesOf({ [key]: 'kept' })).toEqual({ [key]: 'kept' });
  });

  it('matches a short secret word as a whole word of the key, in any case style, and nowhere else', () => {
    const ordinary = fc.constantFrom<string>(
      'user',
      'shipping',
      'author',
      'name',
      'opinion',
      'spinner',
      'business',
      'inside',
      'footprint',
      'code',
      'new',
    );
    const secretWord = fc.constantFrom<string>('pwd', 'auth', 'jwt', 'otp', 'pin', 'ssn', 'session', 'password', 'token', 'secret');
    const style = fc.constantFrom(
      (w: string[]) => w.join('_'),
      (w: string[]) => w.join('-').toUpperCase(),
      (w: string[]) => w.map((x, i) => (i === 0 ? x : x[0].toUpperCase() + x.slice(1))).join(''),
      (w: string[]) => w.join('.'),
    );
    fc.assert(
      fc.property(fc.array(ordinary, { maxLength: 3 }), secretWord, fc.nat(), style, (words, secret, at, join) => {
        const withSecret = [...words];
        withSecret.splice(at % (words.length + 1), 0, secret);
        const secretKey = join(withSecret);
        const plainKey = join(words.length > 0 ? words : ['title']);
        expect(changesOf({ [secretKey]: SECRET, [plainKey]: 'kept' })).toEqual({ [secretKey]: REDACTED, [plainKey]: 'kept' });
      }),
    );
  });

  it('redacts the value of a [name, value] header pair', () => {
    const headers = [
      ['Authorization', `Bearer ${SECRET}`],
      ['Cookie', `sid=${SECRET}`],
      ['accept', 'application/json'],
    ];
    expect(changesOf({ headers })).toEqual({
      headers: [
        ['Authorization', REDACTED],
        ['Cookie', REDACTED],
        ['accept', 'application/json'],
      ],
    });
  });

  it('keeps the data of a Map, a Set, Headers and URLSearchParams, redacted like an object', () => {
    const changes = {
      map: new Map<unknown, unknown>([
        ['password', SECRET],
        ['title', 't'],
        [7, 'seven'],
      ]),
      set: new Set(['a', 'b']),
      headers: new Headers({ authorization: `Bearer ${SECRET}`, accept: 'text/plain' }),
      query: new URLSearchParams(`token=${SECRET}&page=2`),
    };
    expect(changesOf(changes)).toEqual({
      map: { password: REDACTED, title: 't', 7: 'seven' },
      set: ['a', 'b'],
      headers: { authorization: REDACTED, accept: 'text/plain' },
      query: { token: REDACTED, page: '2' },
    });
  });

  it('redacts secrets inside error messages and other text, keeping the rest of the text', () => {
    const changes = {
      error: new Error(`login failed: password=${SECRET} for bob`),
      upstream: new Error(`401 from upstream; sent Authorization: Bearer ${SECRET}`),
      // The shape the interceptor records for a failed request.
      failure: { name: 'Error', message: `connect to postgres://app:${SECRET}@db:5432/x failed` },
      note: `retry with token: "${SECRET}" and pin=${SECRET}`,
    };
    const stored = changesOf(changes) as Record<string, { message: string }> & { note: string };
    expect(JSON.stringify(stored)).not.toContain(SECRET);
    expect(stored.error.message).toBe(`login failed: password=${REDACTED} for bob`);
    expect(stored.upstream.message).toMatch(/^401 from upstream; sent Authorization: /);
    expect(stored.failure.message).toBe(`connect to postgres://app:${REDACTED}@db:5432/x failed`);
    expect(stored.note).toBe(`retry with token: "${REDACTED}" and pin=${REDACTED}`);
    expect(changesOf({ text: 'at 10:30:00, shipping: express, author=Ann' })).toEqual({
      text: 'at 10:30:00, shipping: express, author=Ann',
    });
  });
});

// Entity diffs are redacted by name only, when captured (convertJsonSafe(…, true)) and again when
// their row is normalized: a value never redacts another value.
describe('redaction of diffs, by name only', () => {
  const isRedacted = compileRedactor(AUDIT_DEFAULTS.redactKeys);
  const captured = (change: object) => convertJsonSafe(change, isRedacted, 64 * 1024, true).value;
  const stored = (change: object) => (changesOf({ entities: [captured(change)] }) as { entities: unknown[] }).entities[0];

  it('keeps any [old, new] pair whole, whatever the old value says', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom(...AUDIT_DEFAULTS.redactKeys, 'Trade secret NDA', 'x-auth'), fc.string()),
        fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 })),
        (old, now) => {
          const change = { type: 'NDA', id: 1, op: 'update', fields: { title: [old, now] } };
          expect(stored(change)).toEqual(change);
        },
      ),
    );
  });

  it('scans no text and takes no array for a header list, but redacts keys at any depth', () => {
    const change = {
      fields: {
        note: [`password=${SECRET}`, `Bearer ${SECRET}xyz`],
        labels: [['token', 'session'], null],
        settings: [null, { list: [{ apiKey: SECRET, kind: 'a' }], headers: [['authorization', 'x']] }],
        apiToken: [null, SECRET],
      },
    };
    expect(stored(change)).toEqual({
      fields: {
        note: [`password=${SECRET}`, `Bearer ${SECRET}xyz`],
        labels: [['token', 'session'], null],
        settings: [null, { list: [{ apiKey: REDACTED, kind: 'a' }], headers: [['authorization', 'x']] }],
        apiToken: REDACTED,
      },
    });
  });

  it('leaves everything else as it was: a body, or entities a caller wrote, are redacted by value too', () => {
    const written = { entities: [{ fields: { title: ['secret plan', 'public plan'] } }], body: { header: ['token', SECRET] } };
    expect(changesOf(written)).toEqual({
      entities: [{ fields: { title: ['secret plan', REDACTED] } }],
      body: { header: ['token', REDACTED] },
    });
  });
});

// Each default key counts: a name that it alone of the default list matches, so that dropping it
// from the list shows. A key added to the list needs its name here.
const ONLY_MATCHED_BY: Record<string, string> = {
  password: 'password',
  passwd: 'DB_PASSWD',
  pwd: 'mysql_pwd',
  secret: 'client_secret',
  token: 'accessToken',
  auth: 'x-auth',
  authorization: 'Authorization',
  bearer: 'bearer',
  jwt: 'jwt',
  session: 'sessionId',
  sessid: 'PHPSESSID',
  sid: 'connect.sid',
  cookie: 'set-cookie',
  csrf: '_csrf',
  xsrf: 'xsrfValue',
  saml: 'samlResponse',
  api_key: 'Api-Key',
  private_key: 'privateKey',
  credential: 'credentials',
  otp: 'otpCode',
  pin: 'userPin',
  ssn: 'user_ssn',
};

describe('DEFAULT_REDACT_KEYS', () => {
  it('has a name for each key, and only for its keys', () => {
    expect(Object.keys(ONLY_MATCHED_BY).sort()).toEqual([...DEFAULT_REDACT_KEYS].sort());
  });

  it.each(Object.entries(ONLY_MATCHED_BY))('%s alone of the default keys redacts %s', (redactKey, name) => {
    const without = new AuditEntryNormalizer(
      DEFAULT_REDACT_KEYS.filter((key) => key !== redactKey),
      64 * 1024,
    );
    expect(changesOf({ [name]: SECRET })).toEqual({ [name]: REDACTED });
    expect(without.normalize({ action: 'a', changes: { [name]: SECRET } }).record.changes).toEqual({ [name]: SECRET });
  });

  it('is the list docs/CONFIGURATION.md gives for redactKeys', () => {
    const readme = readFileSync(join(__dirname, '../../docs/CONFIGURATION.md'), 'utf8');
    const row = /^\| `redactKeys` +\| `DEFAULT_REDACT_KEYS`: ([^|]*?) +\|/m.exec(readme);
    expect(row?.[1].split(', ')).toEqual([...DEFAULT_REDACT_KEYS]);
  });
});

describe('compileRedactor', () => {
  it('matches a key of five characters or more anywhere in a name', () => {
    const isRedacted = compileRedactor(['token']);
    expect(['mytoken', 'XTOKEN', 'access_token'].map(isRedacted)).toEqual([true, true, true]);
  });

  it('matches a run of short words in order, all of them, as whole words', () => {
    const isRedacted = compileRedactor(['x-id']);
    expect(['x-id', 'myXId', 'X_ID_2'].map(isRedacted)).toEqual([true, true, true]);
    expect(['userId', 'idX', 'x', 'xidea'].map(isRedacted)).toEqual([false, false, false, false]);
  });

  it('splits names at letters and digits, both ways', () => {
    const isRedacted = compileRedactor(['pin']);
    expect(['pin2', '2pin', 'PIN2Code'].map(isRedacted)).toEqual([true, true, true]);
  });

  it('matches a redact key of separators or symbols only as it is, never every name', () => {
    expect(['title', 'a--b'].map(compileRedactor(['--']))).toEqual([false, false]);
    expect(['title', 'a$$$b'].map(compileRedactor(['$$$']))).toEqual([false, true]);
  });

  it('answers for a name of many words', () => {
    expect(compileRedactor(['pin'])('a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p_q')).toBe(false);
    expect(compileRedactor(['pin'])('a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p_pin')).toBe(true);
  });
});

describe('redactText', () => {
  const isRedacted = compileRedactor(AUDIT_DEFAULTS.redactKeys);

  it.each([
    ['pin=1234', `pin=${REDACTED}`],
    ['password = hunter22 next', `password = ${REDACTED} next`],
    ['{"password": "hunter 22", "title": "t"}', `{"password": "${REDACTED}", "title": "t"}`],
    ["token: 'abc def' rest", `token: '${REDACTED}' rest`],
    ['token: "abc def', `token: "${REDACTED}"`],
    ['sent Bearer abcdefgh12345', `sent Bearer ${REDACTED}`],
    ['Bearer   abcdefgh12345==', `Bearer   ${REDACTED}`],
    ['Bearer abc', 'Bearer abc'],
    ['postgres://app:s3cretpw@db:5432/x', `postgres://app:${REDACTED}@db:5432/x`],
    ['password=, next', 'password=, next'],
    ['title=t; author=Ann', 'title=t; author=Ann'],
    // ':=' (Go, Makefiles, PL/pgSQL) is one separator.
    ['DB_PASSWORD := s3cr3t', `DB_PASSWORD := ${REDACTED}`],
    ['password:=s3cr3t', `password:=${REDACTED}`],
  ])('%s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // Each auth scheme takes its credential: the scheme stays readable when it is a known one.
  it.each([
    ['Authorization: Basic b3BzOnMzY3IzdA==', `Authorization: Basic ${REDACTED}`],
    [
      'curl -H "Authorization: Token s3cr3tvalue" https://api.example.com',
      `curl -H "Authorization: Token ${REDACTED}" https://api.example.com`,
    ],
    ['Proxy-Authorization: Negotiate YIIBhgYGKwYBBQUCoIIB', `Proxy-Authorization: Negotiate ${REDACTED}`],
    ['authorization: NTLM TlRMTVNTUAABAAAA', `authorization: NTLM ${REDACTED}`],
    [
      'Authorization: Digest username="ops", realm="api", nonce="dcd98b", uri="/x", response="6629fae4" then',
      `Authorization: Digest ${REDACTED}`,
    ],
    [
      'Authorization: AWS4-HMAC-SHA256 Credential=AKIA/20261205/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f7',
      `Authorization: AWS4-HMAC-SHA256 ${REDACTED}`,
    ],
    ['Authorization: MyScheme s3cr3tvalue', `Authorization: ${REDACTED}`],
    ['Authorization: s3cr3tvalue (from env)', `Authorization: ${REDACTED}`],
    ['x-auth-token: Token s3cr3tvalue', `x-auth-token: Token ${REDACTED}`],
    // A header folded onto the next line (obsolete in HTTP/1.1, still found in logs).
    ['Authorization: Basic\r\n b3BzOnMzY3IzdA==', `Authorization: Basic\r\n ${REDACTED}`],
    ['X-Api-Token: abc\r\n\tdef\r\nHost: x', `X-Api-Token: ${REDACTED}\r\nHost: x`],
    ['password: abc\n  user: bob', `password: ${REDACTED}\n  user: bob`],
  ])('an auth scheme and its credential: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // An Authorization header's value is the rest of its line and of its folded lines: a credential
  // of any shape goes, a known scheme's name stays. It ends before a quote of the surrounding text,
  // a bracket it did not open, a line of its own, or an '&' after '='.
  it.each([
    // AWS signature v2 and Azure Storage: `<scheme> <key id or account>:<signature>`.
    ['Authorization: AWS AKIAIOSFODNN7EXAMPLE:s3cr3tsig', `Authorization: AWS ${REDACTED}`],
    ['Authorization: SharedKey myaccount:s3cr3tsig', `Authorization: SharedKey ${REDACTED}`],
    ['Authorization: Custom realm s3cr3tvalue', `Authorization: ${REDACTED}`],
    // RFC 9110 allows spaces around an auth-param's '='.
    ['Authorization: Digest username="ops", response = "s3cr3t"', `Authorization: Digest ${REDACTED}`],
    ['Authorization: Basic dXNlcjpw\r\n s3cr3t', `Authorization: Basic ${REDACTED}`],
    ['Proxy-Authorization: Custom a\r\n\tb\r\nHost: x', `Proxy-Authorization: ${REDACTED}\r\nHost: x`],
    ['Authorization: Basic abc\n  Accept: application/json', `Authorization: Basic ${REDACTED}\n  Accept: application/json`],
    ['"Authorization: Custom a b" -d x', `"Authorization: ${REDACTED}" -d x`],
    ["curl -H 'Authorization: Custom a b' -d x", `curl -H 'Authorization: ${REDACTED}' -d x`],
    ["Authorization: Custom it's s3cr3t", `Authorization: ${REDACTED}`],
    ['{"msg":"sent Authorization: Custom a b","level":"error"}', `{"msg":"sent Authorization: ${REDACTED}","level":"error"}`],
    ['request (Authorization: Basic abc) failed', `request (Authorization: Basic ${REDACTED}) failed`],
    ['authorization=Custom a b&page=2', `authorization=${REDACTED}&page=2`],
    ['Authorization: Basic\nHost: x', 'Authorization: Basic\nHost: x'],
    // Under another redacted key a known scheme's credential is read by its syntax.
    ['x-auth: Digest username="ops", response = "s3cr3t" then', `x-auth: Digest ${REDACTED} then`],
    ['x-auth: SharedKey myaccount:s3cr3tsig then', `x-auth: SharedKey ${REDACTED} then`],
  ])('an Authorization header: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // PostgreSQL writes a key detail's columns as its index names them (quoted when the name needs
  // quotes, an expression for an expression index) and its values unescaped.
  it.each([
    ['Key ("apiToken")=(s3cr3t) already exists.', `Key ("apiToken")=${REDACTED} already exists.`],
    ['Key (lower(token))=(s3cr3t) already exists.', `Key (lower(token))=${REDACTED} already exists.`],
    ["Key ((data ->> 'token'::text))=(s3cr3t) already exists.", `Key ((data ->> 'token'::text))=${REDACTED} already exists.`],
    ['Key (tenant_id, "API Key")=(7, s3cr3t) already exists.', `Key (tenant_id, "API Key")=${REDACTED} already exists.`],
    ['Key (password)=(ab)s3cr3t) already exists.', `Key (password)=${REDACTED} already exists.`],
    ['Key (api_token)=(a)s3cr3t) is not present in table "tokens".', `Key (api_token)=${REDACTED} is not present in table "tokens".`],
    [
      'Key (token_span)=([1,5)) conflicts with existing key (token_span)=([2,9)).',
      `Key (token_span)=${REDACTED} conflicts with existing key (token_span)=${REDACTED}.`,
    ],
    [
      '{"detail":"Key (\\"apiToken\\")=(s3cr3t) already exists.","code":"23505"}',
      `{"detail":"Key (\\"apiToken\\")=${REDACTED} already exists.","code":"23505"}`,
    ],
    // PostgreSQL writes a line break of a value as it is: the values run on to their ending, or
    // to the end of the text when it holds none (a detail cut short).
    ['Key (token)=(s3cr3t\nat insert', `Key (token)=${REDACTED}`],
    ['Key (token)=(a\ns3cr3t) already exists.\nnext', `Key (token)=${REDACTED} already exists.\nnext`],
    ['Key (token)=(a\r\n)s3cr3t) is not present in table "t".', `Key (token)=${REDACTED} is not present in table "t".`],
    ['Key (token)=(a) in handler\nb) already exists.', `Key (token)=${REDACTED} already exists.`],
    ['Key (token)=(a\nb) at insert', `Key (token)=${REDACTED}`],
    ['Key (title)=(a)b) already exists.', 'Key (title)=(a)b) already exists.'],
    ['Key (user_id)=(7) is not present in table "users".', 'Key (user_id)=(7) is not present in table "users".'],
  ])('a PostgreSQL key detail: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // An index may hold 32 columns, each an expression PostgreSQL writes deparsed with its casts: the
  // column list is read back to its opening however long it is, never into the detail before it.
  const jsonKeys = ['api_token', ...Array.from({ length: 31 }, (_, i) => `document_key_${i}`)];
  const jsonList = jsonKeys.map((key) => `(payload ->> '${key}'::text)`).join(', ');
  const longNames = Array.from({ length: 31 }, (_, i) => `column_with_a_rather_long_name_${i}`).join(', ');
  it.each([
    [`Key (${jsonList})=(s3cr3t, ${'a, '.repeat(30)}b) already exists.`, `Key (${jsonList})=${REDACTED} already exists.`],
    [
      `Key (${longNames}, lower(api_token))=(${'a, '.repeat(31)}s3cr3t) already exists.`,
      `Key (${longNames}, lower(api_token))=${REDACTED} already exists.`,
    ],
    [
      `Key (token)=(a) already exists. Key (${longNames})=(b) already exists.`,
      `Key (token)=${REDACTED} already exists. Key (${longNames})=(b) already exists.`,
    ],
    [
      `Key (${longNames}, "apiToken")=(${'a, '.repeat(31)}s3cr3t) conflicts with existing key (${longNames}, "apiToken")=(${'a, '.repeat(31)}s3cr3t).`,
      `Key (${longNames}, "apiToken")=${REDACTED} conflicts with existing key (${longNames}, "apiToken")=${REDACTED}.`,
    ],
  ])('a PostgreSQL key detail whose column list is longer than 256 characters: %#', (text, expected) => {
    expect(Math.min(jsonList.length, longNames.length)).toBeGreaterThan(256);
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // A quoted value ends at its closing quote, whatever the depth of encoding; escaped quotes are in it.
  it.each([
    [JSON.stringify({ password: 'p"s3cr3t' }), `{"password":"${REDACTED}"}`],
    [JSON.stringify({ password: 'p\\', user: 'ops' }), `{"password":"${REDACTED}","user":"ops"}`],
    [JSON.stringify(JSON.stringify({ password: 's3cr3t', user: 'ops' })), `"{\\"password\\":\\"${REDACTED}\\",\\"user\\":\\"ops\\"}"`],
    [JSON.stringify(JSON.stringify({ password: 'p"s3cr3t', user: 'ops' })), `"{\\"password\\":\\"${REDACTED}\\",\\"user\\":\\"ops\\"}"`],
    [
      JSON.stringify(JSON.stringify(JSON.stringify({ token: 's3cr3t', user: 'ops' }))),
      JSON.stringify(JSON.stringify(`{"token":"${REDACTED}","user":"ops"}`)),
    ],
    ["{'password': 'p\\'s3cr3t', 'user': 'ops'}", `{'password': '${REDACTED}', 'user': 'ops'}`],
    ['{"tokens":["s3cr3t1","s3cr3t2"],"user":"ops"}', `{"tokens":${REDACTED},"user":"ops"}`],
    ['{"secret":{"a":"s3]cr3t","b":[1]},"user":"ops"}', `{"secret":${REDACTED},"user":"ops"}`],
  ])('a quoted value: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // PostgreSQL's detail of a NOT NULL or CHECK violation prints every column of the row, unescaped:
  // every value goes, to the last ')' before a closing '.' (before the next failing row), or to
  // the end of the text.
  it.each([
    ['Failing row contains (1, s3cr3t, null).', `Failing row contains ${REDACTED}.`],
    ['failing row contains (7, s3cr3t). Retry later.', `failing row contains ${REDACTED}. Retry later.`],
    ['Failing row contains (1, a) b\ns3cr3t, null).\nnext', `Failing row contains ${REDACTED}.\nnext`],
    ['Failing row contains (1, see (a).\ns3cr3t, null).\nnext', `Failing row contains ${REDACTED}.\nnext`],
    [
      'Failing row contains (1, a). s3cr3t). Failing row contains (2, s3cr3t).',
      `Failing row contains ${REDACTED}. Failing row contains ${REDACTED}.`,
    ],
    ['Failing row contains (id, note) = (1, s3cr3t).', `Failing row contains ${REDACTED}.`],
    ['Failing row contains (1, s3cr3t', `Failing row contains ${REDACTED}`],
    ['{"detail":"Failing row contains (1, s3cr3t).","code":"23502"}', `{"detail":"Failing row contains ${REDACTED}.","code":"23502"}`],
  ])('a PostgreSQL failing row: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // A PEM private key's body goes, from its BEGIN line to its END line (or the end of the text).
  it.each([
    [
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAs3cr3t\n-----END RSA PRIVATE KEY-----\nnext',
      `-----BEGIN RSA PRIVATE KEY-----${REDACTED}-----END RSA PRIVATE KEY-----\nnext`,
    ],
    [
      JSON.stringify({ pem: '-----BEGIN PRIVATE KEY-----\nMIIEvs3cr3t\n-----END PRIVATE KEY-----\n', user: 'ops' }),
      `{"pem":"-----BEGIN PRIVATE KEY-----${REDACTED}-----END PRIVATE KEY-----\\n","user":"ops"}`,
    ],
    ['-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEs3cr3t', `-----BEGIN OPENSSH PRIVATE KEY-----${REDACTED}`],
    [
      'x -----BEGIN ENCRYPTED PRIVATE KEY-----\r\nMIIF s3cr3t\r\n-----END ENCRYPTED PRIVATE KEY----- y',
      `x -----BEGIN ENCRYPTED PRIVATE KEY-----${REDACTED}-----END ENCRYPTED PRIVATE KEY----- y`,
    ],
    [
      '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBs3cr3t\n-----END PGP PRIVATE KEY BLOCK-----',
      `-----BEGIN PGP PRIVATE KEY BLOCK-----${REDACTED}-----END PGP PRIVATE KEY BLOCK-----`,
    ],
    ['-----BEGIN CERTIFICATE-----\nMIIDdz\n-----END CERTIFICATE-----', '-----BEGIN CERTIFICATE-----\nMIIDdz\n-----END CERTIFICATE-----'],
  ])('a PEM private key: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // A command line's option takes the next word as its value (`--password s3cr3t`) or the text
  // after '=' (`--password=s3cr3t`).
  it.each([
    ['pg_dump --password s3cr3t --host db app', `pg_dump --password ${REDACTED} --host db app`],
    ['pg_dump --password=s3cr3t --host db', `pg_dump --password=${REDACTED} --host db`],
    ['cli --db-pass "a b s3cr3t" --x 1', `cli --db-pass "${REDACTED}" --x 1`],
    ["cli --api-token 'a b s3cr3t'", `cli --api-token '${REDACTED}'`],
    ['cli --password "a\\" s3cr3t" next', `cli --password "${REDACTED}" next`],
    ['{"cmd":"pg_dump --password s3cr3t\\nnext"}', `{"cmd":"pg_dump --password ${REDACTED}\\nnext"}`],
    ['cli --auth-token\ts3cr3t;x) next', `cli --auth-token\t${REDACTED} next`],
    ['psql --no-password --host db', 'psql --no-password --host db'],
    ['cli --title report --count 2', 'cli --title report --count 2'],
  ])('a command-line option: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // URL-encoded text (a query string inside a query string, a logged form body): '%3D' is '=', and
  // a value ends at '%26' ('&').
  it.each([
    ['password%3Ds3cr3t', `password%3D${REDACTED}`],
    ['next=%2Flogin%3Fuser%3Dann%26password%3Ds3cr3t%26lang%3Den', `next=%2Flogin%3Fuser%3Dann%26password%3D${REDACTED}%26lang%3Den`],
    ['next=%2Fx%3Fpin%3d1234%26a%3Db', `next=%2Fx%3Fpin%3d${REDACTED}%26a%3Db`],
    ['r=%252Fx%253Ftoken%253Ds3cr3t%2526a%253Db', `r=%252Fx%253Ftoken%253D${REDACTED}%2526a%253Db`],
    ['next=%2Flogin%3Fuser%3Dann', 'next=%2Flogin%3Fuser%3Dann'],
  ])('a URL-encoded field: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });

  // A name of two words or more whose last word is pass, passwd, pwd, secret or token (an
  // environment variable's) is a secret's, whatever redactKeys holds.
  it.each([
    ['DB_PASS=s3cr3t', `DB_PASS=${REDACTED}`],
    ['export SMTP_PASS="s3cr3t"', `export SMTP_PASS="${REDACTED}"`],
    ['MYSQL_PWD=s3cr3t REDIS_PASSWD=s3cr3t', `MYSQL_PWD=${REDACTED} REDIS_PASSWD=${REDACTED}`],
    ['APP_SECRET: s3cr3t, GH_TOKEN: s3cr3t', `APP_SECRET: ${REDACTED}, GH_TOKEN: ${REDACTED}`],
    ['dbPass=s3cr3t', `dbPass=${REDACTED}`],
    ['pass: 12, fail: 0, bypass=yes, passport=X1', 'pass: 12, fail: 0, bypass=yes, passport=X1'],
  ])('a name ending in a secret word: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
    expect(redactText(text, compileRedactor(['iban']))).toBe(expected);
  });

  it('redacts every cookie of a Set-Cookie line as fetch joins several (Headers.get)', () => {
    const headers = new Headers();
    headers.append('set-cookie', 'sid=s-1a2b3c4d5e; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly');
    headers.append('set-cookie', 'refresh=rt-9f8e7d6c5b4a; Path=/; Secure');
    const line = `set-cookie: ${headers.get('set-cookie')}`;
    expect(line).toBe(
      'set-cookie: sid=s-1a2b3c4d5e; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly, refresh=rt-9f8e7d6c5b4a; Path=/; Secure',
    );
    expect(redactText(line, isRedacted)).toBe(`set-cookie: ${REDACTED}`);
  });

  it('gives the same text when it reads its own output again', () => {
    const texts = [
      'Authorization: Digest username="ops", response="6629fae4" then',
      'Authorization: Basic b3BzOnMzY3IzdA==',
      'Authorization: s3cr3tvalue (from env)',
      'Cookie: a=1; b=2\nHost: x',
      '{"tokens":["a"],"password":"p\\"q","user":"ops"}',
      JSON.stringify(JSON.stringify({ password: 'p"q' })),
      'postgres://ops:p@s3cr3t@db/app and token: abc\r\n def',
    ];
    for (const text of texts) {
      const once = redactText(text, isRedacted);
      expect(redactText(once, isRedacted)).toBe(once);
    }
  });

  it.each([
    ['Cookie: lang=en; remember_me=s3cr3t', `Cookie: ${REDACTED}`],
    ['Cookie: lang=en;remember_me=s3cr3t\nHost: x', `Cookie: ${REDACTED}\nHost: x`],
    ['curl -H "Cookie: a=1; b=s3cr3t" https://x', `curl -H "Cookie: ${REDACTED}" https://x`],
    ['Set-Cookie: sid=s3cr3t; Path=/; HttpOnly', `Set-Cookie: ${REDACTED}`],
    ['Cookie: sid="s3cr3t', `Cookie: ${REDACTED}`],
    ['Cookie: sid="s3cr3t\nHost: x', `Cookie: ${REDACTED}\nHost: x`],
    ['Cookie: sid="a b"; lang=en\nHost: x', `Cookie: ${REDACTED}\nHost: x`],
    // A Cookie or Set-Cookie header's value is the rest of its line: an Expires date's comma, or
    // cookies joined by ', ', end nothing.
    ['Set-Cookie: sid=a; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly, refresh=s3cr3t\nHost: x', `Set-Cookie: ${REDACTED}\nHost: x`],
    ['Cookie: a=1, b=s3cr3t', `Cookie: ${REDACTED}`],
    ['Set-Cookie: sid=a; Path=/\r\n refresh=s3cr3t\r\nHost: x', `Set-Cookie: ${REDACTED}\r\nHost: x`],
    ['request (Cookie: a=1, b=s3cr3t) failed', `request (Cookie: ${REDACTED}) failed`],
    [JSON.stringify({ msg: 'Set-Cookie: a=1, b=s3cr3t\nHost: x', level: 'e' }), `{"msg":"Set-Cookie: ${REDACTED}\\nHost: x","level":"e"}`],
    ["postgres://ops:it's-s3cr3t@db/app", `postgres://ops:${REDACTED}@db/app`],
    ["psql 'postgres://ops:s3cr3t@db/app'", `psql 'postgres://ops:${REDACTED}@db/app'`],
    ["SELECT 'postgres://ops:it''s-s3cr3t@db/app'", `SELECT 'postgres://ops:${REDACTED}@db/app'`],
    ["'http://host','mail:ann@example.org'", "'http://host','mail:ann@example.org'"],
    ['REDIS_NODES=redis://:s3cr3t@h1,redis://:s3cr3t@h2', `REDIS_NODES=redis://:${REDACTED}@h1,redis://:${REDACTED}@h2`],
    ['x://h1,postgres://ops:s3cr3t@db', `x://h1,postgres://ops:${REDACTED}@db`],
    ['postgres://ops:p@s3cr3t@db.internal:5432/app', `postgres://ops:${REDACTED}@db.internal:5432/app`],
    ['mysql://ops@example.com:s3cr3t@db/app', `mysql://ops@example.com:${REDACTED}@db/app`],
    ['"redis://:s3cr3t@cache:6379"', `"redis://:${REDACTED}@cache:6379"`],
    ['http://host:8080/path?q=a@b and ftp://ops@host/x', 'http://host:8080/path?q=a@b and ftp://ops@host/x'],
    ['GET /callback?code=1&access_token=s3cr3t&state=x', `GET /callback?code=1&access_token=${REDACTED}&state=x`],
    ['user=ops&password=s3cr3t+pw&next=%2F', `user=ops&password=${REDACTED}&next=%2F`],
  ])('cookies, URLs, query strings and form bodies: %s', (text, expected) => {
    expect(redactText(text, isRedacted)).toBe(expected);
  });
});
