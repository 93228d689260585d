import { createServer } from 'node:net';
import { runErase } from '../src/audit/privacy/erase-command';

// Promise (docs/FAILURES.md, "Safe output"): "Error text shown on `/health`, on stderr and in
// Sentry is sanitized: no connection URL, host, user or password".
//
// Break: Node writes a refused or timed-out connection to an IPv6 address without brackets
// (`connect ECONNREFUSED 2001:db8::5:5432`). The URL's hostname, which sanitizeDbError removes as a
// literal, is bracketed (`[2001:db8::5]`, as WHATWG URL writes it), and HOST_PORT only knows an IPv6
// address in brackets, so the database's address and port stay in the message. Shown here with a
// real refused connection to `[::1]` through audit-erase (every command and the module's
// /health, stderr and Sentry text go through the same sanitizeDbError).
//
// Observed: `audit-erase failed: … connect ECONNREFUSED ::1:<port> …`.
//
// Severity: low (the database's address, not a credential; only with an IPv6 address).
// Fix guess: connectionSecrets also removes the URL's hostname without its brackets, and HOST_PORT
// reads an unbracketed IPv6 address before `:port` (Node's `address:port` of net errors).
describe('probe: a refused connection to an IPv6 database address', () => {
  it('names no host in the error line', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const err: string[] = [];
    const code = await runErase(
      ['--url', `postgres://ops:pw0rd@[::1]:${port}/app`, '--by', 'dpo', '--user', 'u-1', '--timeout-ms', '5000'],
      { AUDIT_INTEGRITY_ENTRY_KEY: `k1:${Buffer.alloc(32, 7).toString('base64')}` },
      { out: () => undefined, err: (line) => err.push(line) },
    );
    expect(code).not.toBe(0);
    expect(err.join('\n')).toContain('ECONNREFUSED');
    expect(err.join('\n')).not.toContain(`::1:${port}`);
    expect(err.join('\n')).not.toContain(String(port));
  }, 30_000);
});
