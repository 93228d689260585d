import { AuditEntryNormalizer } from './audit-entry';
import { AUDIT_DEFAULTS } from './audit-options';

// Body strings as the stored row keeps them, with the default redactKeys. Each case is a common
// shape of a kind docs/FAILURES.md "Safe output" promises to redact ("the value after a redacted
// key"), or ordinary text it must not destroy.
const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, 64 * 1024);
const stored = (note: string): string => (normalizer.normalize({ action: 'a', changes: { note } }).record.changes as { note: string }).note;
const SECRET = 'S3CRETdoNotLog';

describe('a secret after a redacted key, in a common shape, is not stored', () => {
  it.each([
    // Keys are matched with spaces ignored (compactKey): `API Key` is the default key `api_key`.
    ['a key of two words ("API Key: …", a form label)', `API Key: ${SECRET}`],
    ['a quoted key of two words (JSON from a form)', `{"Private Key": "${SECRET}"}`],
    // PostgreSQL's unique-violation detail, the most common error text of a database-backed app.
    ['a PostgreSQL key detail (Key (token)=(…) already exists)', `Key (token)=(${SECRET}) already exists.`],
    ['a PostgreSQL key detail of two columns, the secret first', `Key (api_key, tenant_id)=(${SECRET}, 7) already exists.`],
    // Ruby's Hash#inspect and PHP's var_export write `=>` between key and value.
    ['a Ruby or PHP hash ("password"=>"…")', `{"password"=>"${SECRET}"}`],
    ["a PHP array ('password' => '…')", `array ('password' => '${SECRET}')`],
    // Aligned key-value dumps (env listings, config tables) pad the key past 8 spaces.
    ['an aligned dump (password, 12 spaces, "=")', `password            = ${SECRET}`],
    ['an aligned dump (password:, 12 spaces)', `password:            ${SECRET}`],
    // SQL writes a quote inside a literal as two quotes.
    ["a SQL literal with a doubled quote ('it''s …')", `UPDATE users SET password = 'it''s ${SECRET}'`],
  ])('%s', (_label, note) => {
    expect(stored(note)).not.toContain(SECRET);
  });
});

describe('ordinary text without a URL password is stored as written', () => {
  it.each([
    // No user info here: the authority ends at '?' and '#' (RFC 3986), and the '@' is an e-mail's.
    ['a URL with a query holding a time and an e-mail', 'see https://example.com?at=10:30&mail=ann@example.org ok'],
    ['a URL with a fragment holding a time and an e-mail', 'see https://example.com#10:30-ann@example.org ok'],
  ])('%s', (_label, note) => {
    expect(stored(note)).toBe(note);
  });
});
