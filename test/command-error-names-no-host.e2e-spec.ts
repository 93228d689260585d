import { createServer } from 'node:net';
import { runErase } from '../src/audit/privacy/erase-command';

// docs/FAILURES.md, "Safe output": "Error text shown on `/health`, on stderr and in Sentry is
// sanitized: no connection URL, host, user or password". Every command, and the module's /health,
// stderr and Sentry text, go through the same sanitizeDbError; audit-erase is driven here against
// a real refused connection and a real failed lookup. Node writes an IPv6 address of a net error
// without the brackets of the URL (`connect ECONNREFUSED ::1:<port>`), and a failed lookup's host
// name whatever its length (`getaddrinfo ENOTFOUND db`, a docker-compose service's name).
describe("a command's error line names no database host", () => {
  const entryKey = { AUDIT_INTEGRITY_ENTRY_KEY: `k1:${Buffer.alloc(32, 7).toString('base64')}` };

  it('of a refused connection to an IPv6 address: neither the address nor the port', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const err: string[] = [];
    const code = await runErase(
      ['--url', `postgres://ops:pw0rd@[::1]:${port}/app`, '--by', 'dpo', '--user', 'u-1', '--timeout-ms', '5000'],
      entryKey,
      { out: () => undefined, err: (line) => err.push(line) },
    );
    expect(code).not.toBe(0);
    expect(err.join('\n')).toContain('ECONNREFUSED');
    expect(err.join('\n')).not.toContain('::1');
    expect(err.join('\n')).not.toContain(String(port));
  }, 30_000);

  it('of a failed lookup of a two-letter host name', async () => {
    const err: string[] = [];
    const code = await runErase(
      ['--url', 'postgres://ops:pw0rd@db:5432/app', '--by', 'dpo', '--user', 'u-1', '--timeout-ms', '10000'],
      entryKey,
      {
        out: () => undefined,
        err: (line) => err.push(line),
      },
    );
    expect(code).not.toBe(0);
    expect(err.join('\n')).toMatch(/getaddrinfo (ENOTFOUND|EAI_AGAIN) \[host\]/);
    expect(err.join('\n')).not.toMatch(/\bdb\b/);
  }, 30_000);
});
