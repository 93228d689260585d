import { AUDIT_DEFAULTS, resolveAuditOptions } from './audit-options';
import { AUDIT_ERROR_CODES, AuditConfigError } from './audit.errors';

describe('resolveAuditOptions', () => {
  it('applies the documented defaults', () => {
    expect(resolveAuditOptions(undefined)).toMatchObject({
      mode: 'async',
      bufferSize: 1000,
      bufferMaxBytes: 8 * 1024 * 1024,
      maxEntryBytes: 64 * 1024,
      writeTimeoutMs: 2000,
      batchSize: 500,
      batchDelayMs: 25,
      retryBackoffMs: 1000,
      retryBackoffMaxMs: 30_000,
      auditHttp: true,
      readConnections: 4,
      maxExports: 2,
      exportIdleMs: 30_000,
    });
    expect(resolveAuditOptions({ bufferSize: undefined }).bufferSize).toBe(AUDIT_DEFAULTS.bufferSize);
  });

  it.each([
    [{ bufferSize: 0 }, 'bufferSize'],
    [{ bufferSize: 1.5 }, 'bufferSize'],
    [{ writeTimeoutMs: '2000' }, 'writeTimeoutMs'],
    [{ batchSize: 5000 }, 'batchSize'],
    [{ retryBackoffMs: -1 }, 'retryBackoffMs'],
    [{ retryBackoffMs: 5000, retryBackoffMaxMs: 1000 }, 'retryBackoffMaxMs'],
    [{ maxEntryBytes: 2 * 1024 * 1024, bufferMaxBytes: 1024 * 1024 }, 'bufferMaxBytes'],
    [{ redactKeys: ['password', ''] }, 'redactKeys'],
    [{ userIdFrom: 'x-user-id' }, 'userIdFrom'],
    [{ mode: 'fast' }, 'mode'],
    [{ auditHttp: 'yes' }, 'auditHttp'],
    [{ spoolSegmentBytes: 64 * 1024 * 1024 + 1 }, 'spoolSegmentBytes'],
    [{ readTimeoutMs: 0 }, 'readTimeoutMs'],
    [{ readConnections: 1 }, 'readConnections'],
    [{ readConnections: '4' }, 'readConnections'],
    [{ maxExports: 0 }, 'maxExports'],
    [{ maxExports: 4 }, 'maxExports'],
    [{ readConnections: 8, maxExports: 8 }, 'maxExports'],
    [{ exportIdleMs: 50 }, 'exportIdleMs'],
    [{ batchDelayMs: -1 }, 'batchDelayMs'],
    [{ batchDelayMs: 2.5 }, 'batchDelayMs'],
    [{ batchDelayMs: 1001, writeTimeoutMs: 10_000 }, 'batchDelayMs'],
    [{ batchDelayMs: 60, writeTimeoutMs: 100 }, 'batchDelayMs'],
  ])('rejects %j naming %s', (input, key) => {
    expect(() => resolveAuditOptions(input as never)).toThrow(new RegExp(`option "${key}" must be`));
    try {
      resolveAuditOptions(input as never);
    } catch (error) {
      expect(error).toBeInstanceOf(AuditConfigError);
      expect((error as AuditConfigError).code).toBe(AUDIT_ERROR_CODES.invalidOption);
    }
  });

  it('keeps the linger within half of writeTimeoutMs, lowering only its default', () => {
    expect(() => resolveAuditOptions({ batchDelayMs: 30, writeTimeoutMs: 50 })).toThrow(
      'AuditModule option "batchDelayMs" must be at most half of writeTimeoutMs (50), so that a lingering batch keeps time to commit, got 30',
    );
    expect(resolveAuditOptions({ batchDelayMs: 25, writeTimeoutMs: 50 }).batchDelayMs).toBe(25);
    expect(resolveAuditOptions({ writeTimeoutMs: 15 }).batchDelayMs).toBe(7);
    expect(resolveAuditOptions({ batchDelayMs: 0 }).batchDelayMs).toBe(0);
  });

  it('takes spool segments of up to 64 MiB', () => {
    expect(resolveAuditOptions({ spoolSegmentBytes: 64 * 1024 * 1024 }).spoolSegmentBytes).toBe(64 * 1024 * 1024);
  });

  it('keeps a read connection for pages beside the exports', () => {
    expect(() => resolveAuditOptions({ readConnections: 3, maxExports: 3 })).toThrow(
      'AuditModule option "maxExports" must be below readConnections (3), so that pages always have a connection, got 3',
    );
    expect(resolveAuditOptions({ readConnections: 10, maxExports: 9 })).toMatchObject({
      readConnections: 10,
      maxExports: 9,
    });
  });

  it('rejects an unknown key, listing the known ones', () => {
    expect(() => resolveAuditOptions({ bufferSzie: 10 } as never)).toThrow(
      /option "bufferSzie" is not known; known options: mode, bufferSize/,
    );
  });
});
