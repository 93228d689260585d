import { compileRedactor, DEFAULT_REDACT_KEYS, redactText } from './redaction';

// Promise (docs/FAILURES.md, "Safe output"): "After an auth scheme (`Authorization: Basic …`,
// `Token`, `Digest username="…", response="…"`, `Negotiate`…) the credential goes and a known
// scheme's name stays; under an `Authorization` header an unknown first word goes with what
// follows it. A `Cookie:` or `Set-Cookie:` line loses every cookie of it, and a URL's password runs
// to the last `@` before its host"; a value is read "on across a folded header line".
//
// Break: eight texts keep their secret after redactText (the same reading the audit row, stderr
// and Sentry get):
// - the credential of a scheme the reading does not know ends at its first ':' : AWS's signature
//   v2 header (`AWS <access key id>:<signature>`, still spoken by S3-compatible stores) and Azure
//   Storage's `SharedKey <account>:<signature>` keep the signature;
// - an unknown scheme's credential of several words keeps every word after the first;
// - Digest auth-params written with spaces around '=' (RFC 9110 allows BWS there) keep the
//   response after the first parameter;
// - a Basic credential followed by a folded line keeps the folded part;
// - a URL password with a sub-delimiter RFC 3986 allows in user info (`'`) is not seen as a
//   password at all (the authority is taken to end at the quote);
// - a cookie whose quoted value is never closed keeps the value;
// - an assignment written `:=` (Go, Makefiles, PL/pgSQL) has its '=' taken for the value and
//   keeps the value after it (`DB_PASSWORD :[REDACTED] hunter2`).
// Observed: see each case's comment (the secret is in the output of redactText).
// Severity: medium (signatures and passwords reach the audit row, stderr and Sentry; the AWS and
// Azure headers are what SDKs log when a request fails).
// Fix guess: under `Authorization`, drop everything to the end of the header line (and its folded
// continuations) except a known scheme's name; read Digest auth-params with optional whitespace
// around '='; read ':=' as one separator; end a URL's authority only at '/', '?', '#', whitespace
// or a delimiter of the surrounding text, not at a quote RFC 3986 allows in user info; read an
// unclosed quoted cookie value to the end of its line.
const isRedacted = compileRedactor(DEFAULT_REDACT_KEYS);
const SECRET = 'S3CRETdoNotLog';

describe('probe: free text keeps no secret after an auth scheme, a cookie or a URL password', () => {
  it.each([
    // => 'Authorization: [REDACTED]:S3CRETdoNotLog'
    ['an AWS signature v2 header', `Authorization: AWS AKIAIOSFODNN7EXAMPLE:${SECRET}`],
    // => 'Authorization: [REDACTED]:S3CRETdoNotLog'
    ['an Azure Storage SharedKey header', `Authorization: SharedKey myaccount:${SECRET}`],
    // => 'Authorization: [REDACTED] S3CRETdoNotLog'
    ['an unknown scheme with a credential of two words', `Authorization: Custom realm ${SECRET}`],
    // => 'Authorization: Digest [REDACTED], response = "S3CRETdoNotLog"'
    ['Digest auth-params with spaces around "="', `Authorization: Digest username="ops", response = "${SECRET}"`],
    // => 'Authorization: Basic [REDACTED]\r\n S3CRETdoNotLog'
    ['a Basic credential continued on a folded line', `Authorization: Basic dXNlcjpw\r\n ${SECRET}`],
    // => unchanged
    ["a URL password with a sub-delimiter (')", `postgres://ops:it's-${SECRET}@db/app`],
    // => 'Cookie: [REDACTED]"S3CRETdoNotLog'
    ['a cookie whose quoted value is never closed', `Cookie: sid="${SECRET}`],
    // => 'DB_PASSWORD :[REDACTED] S3CRETdoNotLog'
    ['an assignment written ":="', `DB_PASSWORD := ${SECRET}`],
  ])('%s', (_label, text) => {
    const once = redactText(text, isRedacted);
    expect(once).not.toContain(SECRET);
    expect(redactText(once, isRedacted)).toBe(once);
  });
});
