import { compileRedactor, DEFAULT_REDACT_KEYS, redactText } from './redaction';

// Probe (A13): redacting a redacted text changes nothing (an entry's text is redacted again where
// it is read back: a spooled or buffered line replayed, an export re-imported). docs/FAILURES.md
// "Safe output": after an auth scheme "the credential goes and a known scheme's name stays", and a
// value is read "on across a folded header line". A folded Authorization header, redacted once,
// reads as a scheme whose value folds onto "[REDACTED": the second pass takes the scheme's name and
// leaves a stray "]".
const isRedacted = compileRedactor(DEFAULT_REDACT_KEYS);

describe('probe: redaction is idempotent', () => {
  it.each([
    ['a Digest header folded after its scheme', 'Authorization: Digest\r\n username="ops", response="6629fae49393a05397450978507c4ef1"'],
    ['a Basic header folded after its scheme', 'Authorization: Basic\n dXNlcjpwYXNzd29yZA=='],
  ])('%s', (_label, text) => {
    const once = redactText(text, isRedacted);
    expect(once).not.toContain('6629fae4');
    expect(once).not.toContain('dXNlcjpw');
    expect(redactText(once, isRedacted)).toBe(once);
  });
});
