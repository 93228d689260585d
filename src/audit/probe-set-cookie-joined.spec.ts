import { AUDIT_DEFAULTS } from './audit-options';
import { compileRedactor, redactText } from './redaction';

// Promise (docs/FAILURES.md, "Safe output"): "A `Cookie:` or `Set-Cookie:` line loses every cookie
// of it".
//
// Break: a Set-Cookie line that holds several cookies, as fetch's `Headers.get('set-cookie')`
// joins them (`, ` between cookies), loses only the first when a cookie before it has an
// `Expires` attribute: the comma inside the date (`Expires=Wed, 21 Oct 2026 …`) ends the list's
// reading, and the next cookie, after `HttpOnly, `, is kept as written. Here the joined line is
// the real one Node's Headers gives.
//
// Observed: `set-cookie: [REDACTED], 21 Oct 2026 07:28:00 GMT; HttpOnly, refresh=rt-9f8e7d6c5b4a; Path=/; Secure`.
//
// Severity: medium (a session or refresh cookie an upstream issued, kept in every sink, in the
// common shape of a cookie with an expiry).
// Fix guess: read a Set-Cookie line's value to its line's end (as an Authorization header's), or
// read an `Expires=` attribute's date whole before looking for the next cookie after a comma.
describe('probe: a Set-Cookie line of cookies joined by fetch', () => {
  it('keeps no cookie value of the line', () => {
    const headers = new Headers();
    headers.append('set-cookie', 'sid=s-1a2b3c4d5e; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly');
    headers.append('set-cookie', 'refresh=rt-9f8e7d6c5b4a; Path=/; Secure');
    const line = `set-cookie: ${headers.get('set-cookie')}`;
    expect(line).toBe(
      'set-cookie: sid=s-1a2b3c4d5e; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly, refresh=rt-9f8e7d6c5b4a; Path=/; Secure',
    );
    const redacted = redactText(line, compileRedactor(AUDIT_DEFAULTS.redactKeys));
    expect({ sid: redacted.includes('s-1a2b3c4d5e'), refresh: redacted.includes('rt-9f8e7d6c5b4a') }).toEqual({
      sid: false,
      refresh: false,
    });
  });
});
