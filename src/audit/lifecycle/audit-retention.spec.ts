import { Logger } from '@nestjs/common';
import { type Repository } from 'typeorm';
import { type AuditLog } from '../audit-log.entity';
import { type ResolvedAuditOptions } from '../audit-options';
import { ConsoleSink } from '../sinks';
import { AuditRetention } from './audit-retention';

// The schedule only (fake timers, a DataSource not connected, so each run does nothing): the runs
// themselves are held by the retention suites against a real PostgreSQL.
function retention(intervalMs: number): { service: AuditRetention; runs: jest.SpyInstance } {
  const options = {
    writeTimeoutMs: 2000,
    integrity: { enabled: true, signingKey: null, sealerDatabaseUrl: null },
    retention: { months: 12, legalHold: [], intervalMs },
  } as unknown as ResolvedAuditOptions;
  const repository = { manager: { query: () => Promise.resolve([]), connection: { isInitialized: false } } };
  const service = new AuditRetention(options, repository as unknown as Repository<AuditLog>, new ConsoleSink());
  return { service, runs: jest.spyOn(service, 'retainNow') };
}

describe('AuditRetention schedule', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it.each([86_400_000, 2_678_400_000])(
    'runs at start, then once every %i ms, even past the longest timer Node keeps',
    async (intervalMs) => {
      const { service, runs } = retention(intervalMs);
      service.onApplicationBootstrap();
      await jest.advanceTimersByTimeAsync(1000);
      expect(runs).toHaveBeenCalledTimes(1);
      await jest.advanceTimersByTimeAsync(intervalMs - 2000);
      expect(runs).toHaveBeenCalledTimes(1);
      await jest.advanceTimersByTimeAsync(2000);
      expect(runs).toHaveBeenCalledTimes(2);
      await service.beforeApplicationShutdown();
      await jest.advanceTimersByTimeAsync(intervalMs * 2);
      expect(runs).toHaveBeenCalledTimes(2);
    },
  );
});
