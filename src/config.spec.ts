import { ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('reads the documented variables', () => {
    expect(
      loadConfig({
        PORT: '8080',
        DATABASE_URL: 'postgres://u:p@h/app',
        AUDIT_DATABASE_URL: 'postgresql://u:p@h/audit',
        SENTRY_DSN: 'https://key@o1.ingest.example/1',
        AUDIT_BUFFER_SIZE: '5000',
        AUDIT_WRITE_TIMEOUT_MS: '1500',
        AUDIT_BATCH_DELAY_MS: '20',
        AUDIT_RETRY_BACKOFF_MS: '250',
        AUDIT_RETRY_BACKOFF_MAX_MS: '10000',
        AUDIT_HTTP: 'false',
        AUDIT_MODE: 'sync',
        AUDIT_SPOOL_DIR: '/var/spool/audit',
        AUDIT_SPOOL_MAX_BYTES: '1048576',
        AUDIT_READ_TIMEOUT_MS: '3000',
        AUDIT_READ_CONNECTIONS: '6',
        AUDIT_MAX_EXPORTS: '3',
        AUDIT_EXPORT_IDLE_MS: '60000',
        AUDIT_HTTP_TOKEN: 'auditor-token-0123456789',
      }),
    ).toEqual({
      port: 8080,
      databaseUrl: 'postgres://u:p@h/app',
      auditDatabaseUrl: 'postgresql://u:p@h/audit',
      sentryDsn: 'https://key@o1.ingest.example/1',
      auditHttpToken: 'auditor-token-0123456789',
      audit: {
        bufferSize: 5000,
        writeTimeoutMs: 1500,
        batchDelayMs: 20,
        retryBackoffMs: 250,
        retryBackoffMaxMs: 10000,
        auditHttp: false,
        mode: 'sync',
        spoolDir: '/var/spool/audit',
        spoolMaxBytes: 1048576,
        readTimeoutMs: 3000,
        readConnections: 6,
        maxExports: 3,
        exportIdleMs: 60000,
      },
    });
    expect(loadConfig({})).toMatchObject({ port: 3000, databaseUrl: undefined, sentryDsn: undefined, audit: { bufferSize: undefined } });
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['AUDIT_BUFFER_SIZE', '0'],
    ['AUDIT_BUFFER_SIZE', '1e3'],
    ['AUDIT_WRITE_TIMEOUT_MS', '-5'],
    ['AUDIT_RETRY_BACKOFF_MS', '1.5'],
    ['AUDIT_RETRY_BACKOFF_MAX_MS', 'soon'],
    ['AUDIT_HTTP', 'off'],
    ['AUDIT_MODE', 'eventually'],
    ['AUDIT_SPOOL_MAX_BYTES', '10'],
    ['AUDIT_READ_TIMEOUT_MS', '0'],
    ['AUDIT_READ_CONNECTIONS', '1'],
    ['AUDIT_MAX_EXPORTS', 'many'],
    ['AUDIT_EXPORT_IDLE_MS', '10'],
    ['AUDIT_HTTP_TOKEN', 'short'],
    ['DATABASE_URL', 'mysql://u:p@h/db'],
    ['AUDIT_DATABASE_URL', 'not a url'],
    ['SENTRY_DSN', 'ftp://x'],
  ])('stops on %s=%j with a message naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^Environment variable ${name} must be`));
  });

  it('reads the integrity variables into the integrity option, and leaves it out when none is set', () => {
    expect(
      loadConfig({ AUDIT_INTEGRITY_ENABLED: 'true', AUDIT_INTEGRITY_INTERVAL_MS: '1000', AUDIT_INTEGRITY_SIGNING_KEY: 'MC4CAQAw' }).audit
        .integrity,
    ).toEqual({ enabled: true, intervalMs: 1000, signingKey: 'MC4CAQAw' });
    expect('integrity' in loadConfig({}).audit && loadConfig({}).audit.integrity).toBeFalsy();
    expect(() => loadConfig({ AUDIT_INTEGRITY_ENABLED: 'yes' })).toThrow(/^Environment variable AUDIT_INTEGRITY_ENABLED must be/);
    expect(() => loadConfig({ AUDIT_INTEGRITY_MAX_ROWS_PER_SEAL: '5' })).toThrow(
      /^Environment variable AUDIT_INTEGRITY_MAX_ROWS_PER_SEAL must be/,
    );
  });

  it("reads AUDIT_INTEGRITY_SEALER_DATABASE_URL as the sealer's own credentials", () => {
    const url = 'postgres://sealer:pw@db/audit';
    expect(loadConfig({ AUDIT_INTEGRITY_SEALER_DATABASE_URL: url }).audit.integrity).toEqual({ sealerDatabaseUrl: url });
    expect(loadConfig({}).audit.integrity).toBeUndefined();
  });

  it('reads AUDIT_INTEGRITY_ENTRY_KEY as the entry keys, the signing key first, and never echoes a bad one', () => {
    const secret = 'a-secret-of-at-least-thirty-two-characters';
    expect(loadConfig({ AUDIT_INTEGRITY_ENTRY_KEY: `k2:${secret}2,k1:${secret}1` }).audit.integrity).toEqual({
      entryKeys: [
        { id: 'k2', secret: `${secret}2` },
        { id: 'k1', secret: `${secret}1` },
      ],
    });
    expect(() => loadConfig({ AUDIT_INTEGRITY_ENTRY_KEY: secret })).toThrow(
      /^Environment variable AUDIT_INTEGRITY_ENTRY_KEY: (?!.*thirty)/,
    );
  });

  it('stops when the backoff cap is below the backoff, naming the variable', () => {
    expect(() => loadConfig({ AUDIT_RETRY_BACKOFF_MS: '5000', AUDIT_RETRY_BACKOFF_MAX_MS: '1000' })).toThrow(
      /^Environment variable AUDIT_RETRY_BACKOFF_MAX_MS must be at least/,
    );
    expect(loadConfig({ AUDIT_RETRY_BACKOFF_MS: '500', AUDIT_RETRY_BACKOFF_MAX_MS: '500' }).audit.retryBackoffMaxMs).toBe(500);
  });

  it('does not echo a bad database URL, which may hold a password', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://u:hunter2@h/db' })).toThrow(/^(?!.*hunter2)/);
  });
});
