import { Logger } from '@nestjs/common';
import { type Repository } from 'typeorm';
import { type AuditLog } from '../audit-log.entity';
import { type ResolvedAuditOptions } from '../audit-options';
import { type AuditReporter, ConsoleSink } from '../sinks';
import { AuditSealer } from './audit-sealer';

// Start-up only: what the sealer decides before it reaches any database. Sealing itself is held by
// the integrity suites against a real PostgreSQL (see mutate/SCORES.md).
function sealer(integrity: { enabled: boolean; entryKeys?: unknown[] }, repository: object): AuditSealer {
  const options = {
    writeTimeoutMs: 2000,
    spoolDir: null,
    integrity: { intervalMs: 5000, maxRowsPerSeal: 20_000, signingKey: null, entryKeys: [], ...integrity },
  } as unknown as ResolvedAuditOptions;
  return new AuditSealer(options, repository as Repository<AuditLog>, new ConsoleSink(), {} as AuditReporter);
}

describe('AuditSealer at start-up', () => {
  let warn: jest.SpyInstance;
  beforeEach(() => {
    jest.useFakeTimers();
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('does nothing, and shows no status, with integrity off', async () => {
    const off = sealer({ enabled: false }, { manager: { query: jest.fn() } });
    off.onApplicationBootstrap();
    expect(off.status()).toBeNull();
    expect(warn).not.toHaveBeenCalled();
    expect(jest.getTimerCount()).toBe(0);
    await off.beforeApplicationShutdown();
  });

  it('says so and seals nothing when the repository is a test double', async () => {
    const double = sealer({ enabled: true }, {});
    double.onApplicationBootstrap();
    expect(warn).toHaveBeenCalledWith('Integrity is enabled but the AuditLog repository is a test double: nothing is sealed');
    expect(jest.getTimerCount()).toBe(0);
    expect(double.status()).toMatchObject({ lastSealedAt: null, failures: 0, sealed: 0, chainBroken: null, forged: 0 });
    await double.beforeApplicationShutdown();
  });

  it('warns that rows are not checked for authenticity without entry keys, and starts sealing', async () => {
    const unkeyed = sealer({ enabled: true }, { manager: { query: jest.fn() } });
    unkeyed.onApplicationBootstrap();
    expect(warn).toHaveBeenCalledWith(
      'Integrity is enabled without integrity.entryKeys: rows are sealed, but not checked for authenticity (see docs/INTEGRITY.md)',
    );
    expect(jest.getTimerCount()).toBe(1);
    await unkeyed.beforeApplicationShutdown();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('starts sealing without a warning when entry keys are given', async () => {
    const keyed = sealer({ enabled: true, entryKeys: [{ id: 'k1' }] }, { manager: { query: jest.fn() } });
    keyed.onApplicationBootstrap();
    expect(warn).not.toHaveBeenCalled();
    expect(jest.getTimerCount()).toBe(1);
    await keyed.beforeApplicationShutdown();
  });
});
