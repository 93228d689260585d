import { runErase } from '../src/audit/privacy/erase-command';

// Promise (docs/FAILURES.md, "Safe output"): "Error text shown on `/health`, on stderr and in
// Sentry is sanitized: no connection URL, host, user or password".
//
// Break: sanitizeDbError removes the connection's literal host, user and password only when they
// are 3 characters or more, and HOST_PORT matches a name with a dot, or one followed by a port.
// The host of a docker-compose database is commonly `db` or `pg`: a failed lookup of it
// (`getaddrinfo ENOTFOUND db`) is shown as written.
//
// Observed: `audit-erase failed: ENOTFOUND: getaddrinfo ENOTFOUND db` (or EAI_AGAIN, as the
// resolver answers).
//
// Severity: low (a short name, not a credential).
// Fix guess: remove the URL's hostname whatever its length after `ENOTFOUND `/`EAI_AGAIN `/`for
// host "`, or replace the whole address part of Node's getaddrinfo messages.
describe('probe: a failed lookup of a two-letter database host', () => {
  it('names no host in the error line', async () => {
    const err: string[] = [];
    const code = await runErase(
      ['--url', 'postgres://ops:pw0rd@db:5432/app', '--by', 'dpo', '--user', 'u-1', '--timeout-ms', '10000'],
      { AUDIT_INTEGRITY_ENTRY_KEY: `k1:${Buffer.alloc(32, 7).toString('base64')}` },
      { out: () => undefined, err: (line) => err.push(line) },
    );
    expect(code).not.toBe(0);
    expect(err.join('\n')).toMatch(/ENOTFOUND|EAI_AGAIN/);
    expect(err.join('\n')).not.toMatch(/(ENOTFOUND|EAI_AGAIN) db\b/);
  }, 30_000);
});
