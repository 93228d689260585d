import { Logger } from '@nestjs/common';
import { type Repository } from 'typeorm';
import { type AuditEntry, AuditEntryNormalizer, type AuditRecord } from './audit-entry';
import { type AuditLog } from './audit-log.entity';
import { resolveAuditOptions, type AuditModuleOptions } from './audit-options';
import { AuditService } from './audit.service';
import { DbHealthIndicator } from './audit-db.health';
import { type AuditSealer } from './integrity/audit-sealer';
import { HealthIndicatorService } from '@nestjs/terminus';
import { RingBuffer } from './ring-buffer';
import { type AuditEventName, type AuditReporter, ConsoleSink } from './sinks';
import { type AuditSpool, FileSpool, type SpoolAppendResult } from './spool';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Outcome = 'ok' | 'fail' | 'hang';

/**
 * Stands in for the AuditLog repository as a test double (the module writes through its
 * `insert`): each INSERT attempt asks `behaviour` what to do, and committed rows are kept by id
 * with ON CONFLICT DO NOTHING semantics.
 */
class FakeRepository {
  readonly committed = new Map<string, number>();
  readonly attempts: string[][] = [];
  behaviour: (attempt: number) => Outcome | Promise<Outcome> = () => 'ok';
  /** Entity ids whose rows the table refuses for their content (a CHECK constraint, 23514). */
  readonly refused = new Set<string>();

  async insert(rows: AuditLog[]): Promise<void> {
    const ids = rows.map((row) => row.id);
    this.attempts.push(ids);
    const outcome = await this.behaviour(this.attempts.length);
    if (outcome === 'hang') return new Promise(() => undefined);
    if (outcome === 'fail') throw Object.assign(new Error('connect ECONNREFUSED 10.9.8.7:5432'), { code: 'ECONNREFUSED' });
    if (rows.some((row) => row.entityId !== null && this.refused.has(row.entityId))) {
      throw Object.assign(new Error('new row for relation "audit_log" violates check constraint "no_poison"'), {
        code: '23514',
        constraint: 'no_poison',
      });
    }
    for (const id of ids) if (!this.committed.has(id)) this.committed.set(id, 1);
  }
}

const services: AuditService[] = [];
afterEach(async () => {
  jest.restoreAllMocks();
  await Promise.all(services.splice(0).map((service) => service.beforeApplicationShutdown()));
});

/** Moves `Date.now()` an hour on (again, when called again), past any cool-down of these tests. */
function jumpPastCoolDown(): void {
  const now = Date.now() + 3_600_000;
  jest.spyOn(Date, 'now').mockReturnValue(now);
}

function setup(options: AuditModuleOptions = {}, spool: AuditSpool | null = null, sink?: ConsoleSink) {
  const resolved = resolveAuditOptions({ retryBackoffMs: 20, retryBackoffMaxMs: 40, writeTimeoutMs: 200, ...options });
  const repository = new FakeRepository();
  const events: { event: AuditEventName; fields: Record<string, unknown> }[] = [];
  const console = {
    emit: (event: AuditEventName, _level: string, fields: Record<string, unknown>) =>
      events.push({ event, fields: { ...fields, emittedAt: Date.now() } }),
  } as unknown as ConsoleSink;
  const reporter = {
    writeFailed: jest.fn(),
    recovered: jest.fn(),
    entriesDropped: jest.fn(),
    entriesQuarantined: jest.fn(),
  } satisfies AuditReporter;
  const buffer = new RingBuffer<never>({ capacity: resolved.bufferSize, maxBytes: resolved.bufferMaxBytes });
  const service = new AuditService(resolved, repository as unknown as Repository<AuditLog>, buffer, spool, reporter, sink ?? console);
  services.push(service);
  const of = (event: AuditEventName) => events.filter((e) => e.event === event).map((e) => e.fields);
  return { service, repository, reporter, of };
}

const entry = (n: number): AuditEntry => ({ action: 'nda_created', entityType: 'NDA', entityId: `nda-${n}`, userId: 'u1', changes: { n } });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function eventuallyTrue(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('AuditService', () => {
  it('writes concurrent entries with one multi-row INSERT while up', async () => {
    const { service, repository } = setup();
    await Promise.all(Array.from({ length: 100 }, (_, n) => service.log(entry(n))));
    expect(repository.attempts).toHaveLength(1);
    expect(repository.attempts[0]).toHaveLength(100);
    expect(repository.committed.size).toBe(100);
    expect(service.status()).toMatchObject({ state: 'up', buffered: 0 });
  });

  it('splits a burst into batches of batchSize', async () => {
    const { service, repository } = setup({ batchSize: 30 });
    await Promise.all(Array.from({ length: 100 }, (_, n) => service.log(entry(n))));
    expect(repository.attempts.map((ids) => ids.length)).toEqual([30, 30, 30, 10]);
  });

  it('goes down at the first failed write and stops hammering the database during the cool-down', async () => {
    const { service, repository, reporter, of } = setup({ retryBackoffMs: 5000, retryBackoffMaxMs: 5000 });
    repository.behaviour = () => 'fail';
    await service.log(entry(1));
    expect(service.dbAvailable).toBe(false);
    await Promise.all([service.log(entry(2)), service.log(entry(3))]);
    expect(repository.attempts).toHaveLength(1);
    expect(service.status()).toMatchObject({
      state: 'down',
      buffered: 3,
      lastError: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED [host]' },
    });
    expect(of('audit.db_write_failed')).toHaveLength(1);
    expect(of('audit.buffered').map((f) => f.entityId)).toEqual(['nda-1', 'nda-2', 'nda-3']);
    expect(reporter.writeFailed).toHaveBeenCalledTimes(1);
    expect(reporter.writeFailed.mock.calls[0][0]).toMatchObject({
      action: 'nda_created',
      entityId: 'nda-1',
      attempt: 'write',
      error: { code: 'ECONNREFUSED' },
    });
    expect(JSON.stringify(reporter.writeFailed.mock.calls)).not.toContain('changes');
  });

  it('tries the next entry after the cool-down (half-open), then flushes the buffer exactly once', async () => {
    const { service, repository, reporter, of } = setup({ retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    repository.behaviour = () => 'fail';
    await Promise.all([service.log(entry(1)), service.log(entry(2))]);
    jumpPastCoolDown();
    let release!: (o: Outcome) => void;
    repository.behaviour = () => new Promise<Outcome>((resolve) => (release = resolve));
    const probe = service.log(entry(3));
    expect(service.status().state).toBe('half-open');
    await service.log(entry(4));
    await eventuallyTrue(() => release !== undefined, 1000);
    expect(repository.attempts).toHaveLength(2);
    repository.behaviour = () => 'ok';
    release('ok');
    await probe;
    await sleep(10);
    expect(service.status()).toMatchObject({ state: 'up', buffered: 0 });
    expect(repository.attempts.map((ids) => ids.length)).toEqual([2, 1, 3]);
    expect(repository.committed.size).toBe(4);
    expect(of('audit.recovered')).toEqual([expect.objectContaining({ flushed: 3, dropped: 0, failedAttempts: 1 })]);
    expect(reporter.recovered).toHaveBeenCalledWith(expect.objectContaining({ flushed: 3 }));
  });

  it('with no new entry, tries the oldest buffered batch when the cool-down ends', async () => {
    const { service, repository, of } = setup({ retryBackoffMs: 20, retryBackoffMaxMs: 20 });
    repository.behaviour = () => 'fail';
    await Promise.all([service.log(entry(1)), service.log(entry(2))]);
    let release!: (o: Outcome) => void;
    repository.behaviour = () => new Promise<Outcome>((resolve) => (release = resolve));
    await sleep(40);
    expect(service.status().state).toBe('half-open');
    expect(repository.attempts[1]).toEqual(repository.attempts[0]);
    await service.log(entry(3));
    expect(repository.attempts).toHaveLength(2);
    repository.behaviour = () => 'ok';
    release('ok');
    await sleep(10);
    expect(service.status()).toMatchObject({ state: 'up', buffered: 0 });
    expect(repository.committed.size).toBe(3);
    expect(of('audit.recovered')).toEqual([expect.objectContaining({ flushed: 3 })]);
  });

  it('backs off exponentially with jitter while the database stays down', async () => {
    // The clock and the jitter are the test's: each cool-down is exact, whatever the machine's load.
    jest.useFakeTimers({ now: 1_800_000_000_000, doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const random = jest.spyOn(Math, 'random');
    for (const r of [0, 0.999, 0.5, 0.25, 0.75]) random.mockReturnValueOnce(r);
    try {
      const { service, repository, of } = setup({ retryBackoffMs: 20, retryBackoffMaxMs: 80, batchDelayMs: 0 });
      repository.behaviour = () => 'fail';
      await service.log(entry(1));
      for (let ms = 0; of('audit.db_write_failed').length < 5 && ms < 1000; ms += 5) await jest.advanceTimersByTimeAsync(5);
      const failures = of('audit.db_write_failed').slice(0, 5);
      const coolDowns = failures.map((f) => Date.parse(f.retryAt as string) - (f.emittedAt as number));
      // "Equal jitter": d/2 fixed and d/2 × random, for d = 20, 40, 80 (the cap), 80, 80.
      expect(coolDowns).toEqual([10, 39, 60, 50, 70]);
      // Each try comes when its cool-down ends, not before.
      const tried = failures.map((f) => f.emittedAt as number);
      expect(tried.slice(1).map((at, i) => at - tried[i])).toEqual(coolDowns.slice(0, 4));
      expect(failures.map((f) => f.attempt).slice(0, 3)).toEqual(['write', 'probe', 'probe']);
      expect(of('audit.flush_failed')).toEqual([]);
      await service.beforeApplicationShutdown();
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps what a failed flush did not commit, goes down again, and never writes an entry twice', async () => {
    const { service, repository, of } = setup({ batchSize: 2, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    repository.behaviour = () => 'fail';
    await Promise.all([1, 2, 3, 4, 5].map((n) => service.log(entry(n))));
    jumpPastCoolDown();
    // The probe commits, the first flush batch commits, the second fails.
    const plan: Outcome[] = ['ok', 'ok', 'fail'];
    repository.behaviour = () => plan.shift() ?? 'ok';
    await service.log(entry(6));
    await sleep(10);
    expect(service.status()).toMatchObject({ state: 'down', buffered: 3 });
    expect(of('audit.flush_failed')).toHaveLength(1);
    expect(repository.committed.size).toBe(3);

    jumpPastCoolDown();
    await service.log(entry(7));
    await sleep(10);
    expect(service.status()).toMatchObject({ state: 'up', buffered: 0 });
    expect(repository.committed.size).toBe(7);
    expect(of('audit.recovered')).toEqual([expect.objectContaining({ flushed: 5 })]);
  });

  it('flushes two ring batches at once: when the older fails and the newer commits, only the older stays, and nothing is written twice', async () => {
    const { service, repository, of } = setup({ batchSize: 2, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    repository.behaviour = () => 'fail';
    await Promise.all([1, 2, 3, 4, 5].map((n) => service.log(entry(n))));
    // The ring's order: nda-1 … nda-5.
    const buffered = of('audit.buffered')
      .sort((a, b) => String(a.entityId).localeCompare(String(b.entityId)))
      .map((f) => f.auditId as string);
    jumpPastCoolDown();
    // The probe commits; of the two flush batches in flight, the older fails and the newer commits.
    const plan: Outcome[] = ['ok', 'fail', 'ok'];
    repository.behaviour = () => plan.shift() ?? 'ok';
    const before = repository.attempts.length;
    await service.log(entry(6));
    await sleep(10);
    expect(repository.attempts.slice(before + 1, before + 3)).toEqual([buffered.slice(0, 2), buffered.slice(2, 4)]);
    expect(service.status()).toMatchObject({ state: 'down', buffered: 3 });
    expect(of('audit.flush_failed')).toHaveLength(1);

    jumpPastCoolDown();
    await service.log(entry(7));
    await sleep(10);
    expect(service.status()).toMatchObject({ state: 'up', buffered: 0 });
    expect(repository.committed.size).toBe(7);
    const tries = (id: string) => repository.attempts.filter((ids) => ids.includes(id)).length;
    // nda-1 … nda-4 failed in the first writes (nda-5 was still queued); in the flushes nda-3 and
    // nda-4 were sent once (committed), nda-1 and nda-2 twice (failed, then committed), nda-5 once.
    expect(buffered.map(tries)).toEqual([3, 3, 2, 2, 1]);
    expect(of('audit.recovered')).toEqual([expect.objectContaining({ flushed: 5 })]);
  });

  it('runs one flush at a time, even when shutdown asks for one meanwhile', async () => {
    const { service, repository, of } = setup({ batchSize: 1, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    repository.behaviour = () => 'fail';
    await Promise.all([1, 2, 3].map((n) => service.log(entry(n))));
    const buffered = new Set(of('audit.buffered').map((f) => f.auditId));
    jumpPastCoolDown();
    let flushing = 0;
    let mostFlushing = 0;
    repository.behaviour = async (attempt) => {
      const isFlush = repository.attempts[attempt - 1].some((id) => buffered.has(id));
      flushing += isFlush ? 1 : 0;
      mostFlushing = Math.max(mostFlushing, flushing);
      await sleep(5);
      flushing -= isFlush ? 1 : 0;
      return 'ok' as const;
    };
    await service.log(entry(4));
    await Promise.all([service.beforeApplicationShutdown(), ...[5, 6].map((n) => service.log(entry(n)))]);
    expect(repository.committed.size).toBe(6);
    // One flush, with its two ring batches in flight at once; a second flush would add two more.
    expect(mostFlushing).toBe(2);
  });

  it('counts a hung write as failed after writeTimeoutMs', async () => {
    const { service, repository } = setup({ writeTimeoutMs: 50 });
    repository.behaviour = () => 'hang';
    const started = Date.now();
    await service.log(entry(1));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(service.status()).toMatchObject({ state: 'down', buffered: 1, lastError: { code: 'AUDIT_WRITE_TIMEOUT' } });
  }, 5000);

  it('never rejects, even when the alert sink throws', async () => {
    const { service, repository, reporter } = setup();
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    reporter.writeFailed.mockImplementation(() => {
      throw new Error('sentry is down too');
    });
    repository.behaviour = () => 'fail';
    await expect(service.log(entry(1))).resolves.toBeUndefined();
    await expect(service.log(undefined as never)).resolves.toBeUndefined();
    expect(service.status().buffered).toBe(2);
    expect(warn).toHaveBeenCalledWith('audit reporter failed: Error: sentry is down too');
  });

  it('drains the buffer at shutdown when the database is back, ignoring the cool-down', async () => {
    const { service, repository, of } = setup({ retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    repository.behaviour = () => 'fail';
    await Promise.all([1, 2].map((n) => service.log(entry(n))));
    repository.behaviour = () => 'ok';
    await service.beforeApplicationShutdown();
    expect(repository.committed.size).toBe(2);
    expect(of('audit.dropped')).toEqual([]);
  });

  it('names on stderr each entry it could not write at shutdown', async () => {
    const { service, repository, of } = setup();
    repository.behaviour = () => 'fail';
    await Promise.all([1, 2].map((n) => service.log(entry(n))));
    await service.beforeApplicationShutdown();
    expect(of('audit.dropped')).toEqual([
      expect.objectContaining({ entityId: 'nda-1', reason: 'shutdown' }),
      expect.objectContaining({ entityId: 'nda-2', reason: 'shutdown' }),
    ]);
    expect(service.status()).toMatchObject({ buffered: 0, dropped: 2 });
  });

  describe('with a spool', () => {
    let dir: string;
    beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'audit-spool-'))));
    afterEach(() => rm(dir, { recursive: true, force: true }));

    it('spools what the ring evicts, and replays it after the ring on recovery', async () => {
      const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 1024 * 1024 });
      const { service, repository, of } = setup({ bufferSize: 3, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 }, spool);
      repository.behaviour = () => 'fail';
      await Promise.all([1, 2, 3, 4, 5].map((n) => service.log(entry(n))));
      // The spool counts an entry when it takes it; the line follows once the append answers.
      await eventuallyTrue(() => service.status().spooled === 2 && of('audit.spooled').length === 2, 2000);
      expect(service.status()).toMatchObject({ buffered: 3, spooled: 2, dropped: 0 });
      expect(of('audit.spooled').map((f) => [f.entityId, f.reason])).toEqual([
        ['nda-1', 'evicted'],
        ['nda-2', 'evicted'],
      ]);
      jumpPastCoolDown();
      repository.behaviour = () => 'ok';
      await service.log(entry(6));
      await eventuallyTrue(() => service.status().spooled === 0 && of('audit.recovered').length === 1, 2000);
      expect(service.status()).toMatchObject({ state: 'up', buffered: 0, spooled: 0 });
      expect(repository.committed.size).toBe(6);
      expect(of('audit.recovered')).toEqual([expect.objectContaining({ flushed: 5, dropped: 0 })]);
    });

    it('in sync mode, resolves log() only once the entry the database refused is fsynced to the spool', async () => {
      const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 1024 * 1024 });
      const { service, repository, of } = setup({ mode: 'sync', retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 }, spool);
      repository.behaviour = () => 'fail';
      await service.log(entry(1));
      expect(spool.entries).toBe(1);
      await service.log(entry(2));
      expect(spool.entries).toBe(2);
      expect(service.status().buffered).toBe(0);
      // The line is written once the append has answered, which may be after log() resolves.
      await eventuallyTrue(() => of('audit.spooled').length >= 1, 2000);
      expect(of('audit.spooled')[0]).toMatchObject({
        entityId: 'nda-1',
        reason: 'sync',
        entry: expect.objectContaining({ entityId: 'nda-1' }),
      });
    });

    it('replays what was spooled while the recovering replay was in flight, before saying it recovered', async () => {
      const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 1024 * 1024 });
      const { service, repository, of } = setup({ mode: 'sync', retryBackoffMs: 20, retryBackoffMaxMs: 20 }, spool);
      repository.behaviour = () => 'fail';
      await Promise.all([1, 2].map((n) => service.log(entry(n))));
      let release!: (o: Outcome) => void;
      repository.behaviour = () => new Promise<Outcome>((resolve) => (release = resolve));
      // The retry timer's replay of the spool is the half-open try; entries meanwhile go to a new segment.
      await eventuallyTrue(() => service.status().state === 'half-open' && release !== undefined, 2000);
      await service.log(entry(3));
      expect(spool.entries).toBe(3);
      repository.behaviour = () => 'ok';
      release('ok');
      await eventuallyTrue(() => of('audit.recovered').length === 1, 2000);
      expect(service.status()).toMatchObject({ state: 'up', buffered: 0, spooled: 0 });
      expect(repository.committed.size).toBe(3);
    });

    it('puts the ring into the spool at shutdown when the database is still down', async () => {
      const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 1024 * 1024 });
      const { service, repository, of } = setup({}, spool);
      repository.behaviour = () => 'fail';
      await Promise.all([1, 2, 3].map((n) => service.log(entry(n))));
      await service.beforeApplicationShutdown();
      expect((await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 1024 * 1024 })).entries).toBe(3);
      expect(of('audit.spooled').map((f) => f.reason)).toEqual(['shutdown', 'shutdown', 'shutdown']);
      expect(of('audit.dropped')).toEqual([]);
    });

    it('drops what the full spool refuses, with a count, a line each and one alert', async () => {
      const spool = await FileSpool.open(dir, { maxBytes: 700, segmentBytes: 1024 * 1024 });
      const { service, repository, reporter, of } = setup({ bufferSize: 1, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 }, spool);
      repository.behaviour = () => 'fail';
      for (let n = 1; n <= 6; n += 1) await service.log(entry(n));
      await eventuallyTrue(() => service.status().spooled! + service.status().dropped === 5, 2000);
      const { spooled, dropped } = service.status();
      expect(spooled! + dropped).toBe(5);
      expect(dropped).toBeGreaterThan(0);
      expect(of('audit.dropped')).toHaveLength(dropped);
      expect(of('audit.dropped')[0]).toMatchObject({ reason: 'spool_full', action: 'nda_created' });
      expect(reporter.entriesDropped).toHaveBeenCalledWith(expect.objectContaining({ reason: 'spool_full', count: 1 }));
    });
  });
});

/** A spool that holds each append (or replay) until the test lets it go. */
class HeldSpool implements AuditSpool {
  entries = 0;
  bytes = 0;
  readonly appends: { records: AuditRecord[]; release: () => void }[] = [];
  replayError: Error | undefined;
  /** False: appends resolve at once (for what the test does not watch, such as shutdown). */
  holding = true;
  append(records: AuditRecord[]): Promise<SpoolAppendResult> {
    if (!this.holding) {
      this.entries += records.length;
      return Promise.resolve({ kept: records, dropped: [] });
    }
    return new Promise((resolve) => {
      this.appends.push({
        records,
        release: () => {
          this.entries += records.length;
          resolve({ kept: records, dropped: [] });
        },
      });
    });
  }
  async replay(insert: (records: AuditRecord[]) => Promise<void>): Promise<number> {
    if (this.replayError) throw this.replayError;
    const records = this.appends.flatMap((a) => a.records);
    await insert(records);
    this.entries = 0;
    return records.length;
  }
  async close(): Promise<void> {}
}

describe('AuditService bounds', () => {
  afterEach(() => jest.useRealTimers());

  it('holds at most bufferSize entries on the way to the database; the rest take the failure path at once', async () => {
    const { service, repository, of } = setup({ bufferSize: 50, batchSize: 20, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    repository.behaviour = () => 'hang';
    const logged = Array.from({ length: 200 }, (_, n) => service.log(entry(n)));
    const status = service.status();
    expect(status.pending).toBeLessThanOrEqual(50);
    expect(status).toMatchObject({ state: 'down', lastError: { code: 'AUDIT_BACKLOG_FULL' } });
    expect(of('audit.db_write_failed')[0]).toMatchObject({ error: { code: 'AUDIT_BACKLOG_FULL' } });
    await Promise.all(logged);
    // Every entry has a home: the ring holds the newest 50, the older ones were evicted with a line each.
    expect(of('audit.buffered')).toHaveLength(200);
    expect(service.status()).toMatchObject({ pending: 0, buffered: 50 });
  });

  it('holds at most bufferMaxBytes on the way to the database; the rest take the failure path at once', async () => {
    const { service, repository, of } = setup({
      bufferSize: 10_000,
      bufferMaxBytes: 64 * 1024,
      batchSize: 20,
      retryBackoffMs: 60_000,
      retryBackoffMaxMs: 60_000,
    });
    repository.behaviour = () => 'hang';
    // Entries of about 2 KiB: 64 KiB hold some 30 of them, far fewer than bufferSize.
    let peak = 0;
    const logged = Array.from({ length: 200 }, (_, n) => {
      const logging = service.log({ ...entry(n), changes: { pad: 'x'.repeat(2000) } });
      peak = Math.max(peak, service.status().pending);
      return logging;
    });
    expect(peak).toBeGreaterThan(20);
    expect(peak).toBeLessThanOrEqual(32);
    expect(service.status()).toMatchObject({ state: 'down', lastError: { code: 'AUDIT_BACKLOG_FULL' } });
    expect(of('audit.db_write_failed')[0]).toMatchObject({ error: { code: 'AUDIT_BACKLOG_FULL' } });
    await Promise.all(logged);
    expect(of('audit.buffered')).toHaveLength(200);
  });

  it('shows entries queued and in flight as pending, in status() and in the health details', async () => {
    const { service, repository } = setup({ batchSize: 2, writeTimeoutMs: 2_000 });
    const health = new DbHealthIndicator(new HealthIndicatorService(), service, { status: () => null } as unknown as AuditSealer);
    const releases: ((o: Outcome) => void)[] = [];
    repository.behaviour = () => new Promise<Outcome>((resolve) => releases.push(resolve));
    const logged = [1, 2, 3, 4, 5].map((n) => service.log(entry(n)));
    // Two batches of two in flight, one entry queued behind them.
    await eventuallyTrue(() => releases.length === 2, 1000);
    expect(service.status()).toMatchObject({ state: 'up', pending: 5, buffered: 0 });
    expect(health.isHealthy()).toEqual({ audit_db: expect.objectContaining({ status: 'up', pending: 5 }) });
    releases.forEach((release) => release('ok'));
    await eventuallyTrue(() => releases.length === 3, 1000);
    expect(service.status().pending).toBe(1);
    releases[2]('ok');
    await Promise.all(logged);
    expect(service.status().pending).toBe(0);
    expect(health.isHealthy()).toEqual({ audit_db: expect.objectContaining({ pending: 0 }) });
    expect(repository.committed.size).toBe(5);
  });

  it('counts the time an entry waits in the queue against writeTimeoutMs', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { service, repository, of } = setup({ writeTimeoutMs: 100, batchDelayMs: 0, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    // Every insert takes 90 ms: each under the write timeout on its own.
    repository.behaviour = () => new Promise<Outcome>((resolve) => setTimeout(() => resolve('ok'), 90));
    const t0 = Date.now();
    const settled: Record<string, number> = {};
    void service.log(entry(1)).then(() => (settled.first = Date.now() - t0));
    await jest.advanceTimersByTimeAsync(50);
    void service.log(entry(2)).then(() => (settled.second = Date.now() - t0));
    await jest.advanceTimersByTimeAsync(300);
    // A write's deadline gives its verdict one turn of the loop later (a millisecond on the fake clock).
    expect(settled.first).toBeLessThanOrEqual(101);
    // Logged at 50 ms, it waited 40 ms behind the first batch: its 100 ms end at 150 ms, not at 180.
    expect(settled.second).toBeLessThanOrEqual(151);
    expect(service.status()).toMatchObject({ state: 'down', lastError: { code: 'AUDIT_WRITE_TIMEOUT' } });
    expect(of('audit.buffered').map((f) => f.entityId)).toEqual(['nda-2']);
  });

  it('counts the async linger against writeTimeoutMs: a lingering entry is never answered past its deadline', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { service, repository, of } = setup({ writeTimeoutMs: 100, batchDelayMs: 40, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    const started: number[] = [];
    repository.behaviour = () => {
      started.push(Date.now() - t0);
      return new Promise<Outcome>((resolve) => setTimeout(() => resolve('ok'), 90));
    };
    const t0 = Date.now();
    let settled = -1;
    void service.log(entry(1)).then(() => (settled = Date.now() - t0));
    await jest.advanceTimersByTimeAsync(300);
    // Sent after its 40 ms linger, the 90 ms insert outlasts the entry's 100 ms: it is a timed-out write at 100 ms
    // (its verdict one turn of the loop later, a millisecond on the fake clock).
    expect(started).toEqual([40]);
    expect(settled).toBe(101);
    expect(service.status()).toMatchObject({ state: 'down', lastError: { code: 'AUDIT_WRITE_TIMEOUT' } });
    expect(of('audit.buffered').map((f) => f.entityId)).toEqual(['nda-1']);
  });

  it('holds at most max(bufferSize, 1000) entries waiting for a hung spool; the rest are counted as dropped, each with a line', async () => {
    const spool = new HeldSpool();
    // A write timeout far above the test: the held appends must not be given up at their deadline.
    const { service, repository, of } = setup(
      { bufferSize: 5, writeTimeoutMs: 60_000, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 },
      spool,
    );
    repository.behaviour = () => 'fail';
    for (let n = 1; n <= 1030; n++) await service.log(entry(n));
    const waiting = spool.appends.flatMap((a) => a.records);
    expect(waiting).toHaveLength(1000);
    expect(service.status()).toMatchObject({ buffered: 5, dropped: 25 });
    const dropped = of('audit.dropped');
    expect(dropped).toHaveLength(25);
    expect(dropped.every((f) => f.reason === 'spool_backlog')).toBe(true);
    spool.appends.forEach((a) => a.release());
    await eventuallyTrue(() => of('audit.spooled').length === 1000, 1000);
    spool.holding = false;
  });

  it('in sync mode, answers at once from the ring while 1000 entries already wait for a hung spool', async () => {
    const spool = new HeldSpool();
    const { service, repository, of } = setup(
      { mode: 'sync', bufferSize: 2, writeTimeoutMs: 60_000, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 },
      spool,
    );
    repository.behaviour = () => 'fail';
    const waiting = Array.from({ length: 1000 }, (_, n) => service.log(entry(n)));
    await eventuallyTrue(() => spool.appends.flatMap((a) => a.records).length === 1000, 1000);
    await service.log(entry(1000));
    expect(of('audit.buffered').map((f) => f.entityId)).toEqual(['nda-1000']);
    expect(spool.appends.flatMap((a) => a.records)).toHaveLength(1000);
    spool.appends.forEach((a) => a.release());
    await Promise.all(waiting);
    spool.holding = false;
  });

  it('in sync mode, answers within writeTimeoutMs plus a bounded spool write even when the spool hangs', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const spool = new HeldSpool();
    const { service, repository, of } = setup(
      { mode: 'sync', writeTimeoutMs: 100, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 },
      spool,
    );
    repository.behaviour = () => 'hang';
    const t0 = Date.now();
    let settledAt: number | undefined;
    void service.log(entry(1)).then(() => (settledAt = Date.now() - t0));
    await jest.advanceTimersByTimeAsync(250);
    // The write's and the spool's deadlines each give their verdict one turn of the loop later (a millisecond on the fake clock).
    expect(settledAt).toBeLessThanOrEqual(202);
    // The spool never said it was durable: the ring and its stderr line keep the entry meanwhile.
    expect(of('audit.buffered').map((f) => f.entityId)).toEqual(['nda-1']);
    spool.holding = false;
    spool.appends.forEach((a) => a.release());
  });

  it('keeps the ring oldest first when an older batch fails after newer entries were parked', async () => {
    const { service, repository, of } = setup({ batchSize: 1, bufferSize: 3, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    const releases: ((o: Outcome) => void)[] = [];
    repository.behaviour = () => new Promise<Outcome>((resolve) => releases.push(resolve));
    const first = [1, 2].map((n) => service.log(entry(n)));
    await eventuallyTrue(() => releases.length === 2, 1000);
    releases[0]('fail');
    await eventuallyTrue(() => service.status().state === 'down', 1000);
    await Promise.all([3, 4, 5].map((n) => service.log(entry(n))));
    releases[1]('fail');
    await Promise.all(first);
    // A ring of 3 after 5 entries: the two oldest were evicted, not a newer one.
    expect(of('audit.evicted').map((f) => f.entityId)).toEqual(['nda-1', 'nda-2']);
    const entityOf = new Map(of('audit.buffered').map((f) => [f.auditId, f.entityId]));
    jumpPastCoolDown();
    repository.behaviour = () => 'ok';
    await service.log(entry(6));
    await eventuallyTrue(() => of('audit.recovered').length === 1, 1000);
    expect(
      repository.attempts
        .slice(-3)
        .flat()
        .map((id) => entityOf.get(id)),
    ).toEqual(['nda-3', 'nda-4', 'nda-5']);
  });

  it('reports no loss for entries evicted while their own flush batch commits', async () => {
    const { service, repository, of } = setup({ bufferSize: 3, retryBackoffMs: 20, retryBackoffMaxMs: 20 });
    repository.behaviour = () => 'fail';
    await Promise.all([1, 2, 3].map((n) => service.log(entry(n))));
    let release!: (o: Outcome) => void;
    repository.behaviour = () => new Promise<Outcome>((resolve) => (release = resolve));
    // The retry timer's flush of the ring is the half-open try; entries meanwhile are parked behind it.
    await eventuallyTrue(() => service.status().state === 'half-open' && release !== undefined, 2000);
    await Promise.all([4, 5].map((n) => service.log(entry(n))));
    repository.behaviour = () => 'ok';
    release('ok');
    await eventuallyTrue(() => of('audit.recovered').length === 1, 2000);
    expect(repository.committed.size).toBe(5);
    expect(service.status().dropped).toBe(0);
    expect(of('audit.recovered')[0]).toMatchObject({ dropped: 0 });
  });

  it('takes a spool replay error that is not an insert failure as a failure: down, a line, an alert, a retry', async () => {
    const spool = new HeldSpool();
    spool.entries = 1;
    spool.replayError = Object.assign(new Error("EACCES: permission denied, open '/spool/audit-1.ndjson'"), { code: 'EACCES' });
    const { service, reporter, of } = setup({ retryBackoffMs: 20, retryBackoffMaxMs: 20 }, spool);
    service.onApplicationBootstrap();
    await eventuallyTrue(() => of('audit.db_write_failed').length >= 2, 2000);
    expect(service.status()).toMatchObject({ state: 'down', lastError: { code: 'EACCES' } });
    expect(reporter.writeFailed).toHaveBeenCalled();
  });

  it('retries while a spool append is still waiting for its fsync', async () => {
    const spool = new HeldSpool();
    const { service, repository, of } = setup({ mode: 'sync', writeTimeoutMs: 10_000, retryBackoffMs: 20, retryBackoffMaxMs: 20 }, spool);
    repository.behaviour = () => 'fail';
    const logged = service.log(entry(1));
    await eventuallyTrue(() => spool.appends.length === 1, 1000);
    repository.behaviour = () => 'ok';
    // The cool-down ends while the append still waits; only then does it become durable.
    await sleep(60);
    spool.appends[0].release();
    await logged;
    await eventuallyTrue(() => of('audit.recovered').length === 1, 2000);
    expect(service.status()).toMatchObject({ state: 'up', spooled: 0 });
    expect(repository.committed.size).toBe(1);
  });

  it('after shutdown, spools each new entry, or counts and reports it with the entry', async () => {
    const { service, repository, of } = setup();
    repository.behaviour = () => 'ok';
    await service.beforeApplicationShutdown();
    await service.log(entry(1));
    expect(service.status()).toMatchObject({ buffered: 0, dropped: 1 });
    expect(of('audit.dropped')).toEqual([
      expect.objectContaining({ entityId: 'nda-1', reason: 'shutdown', entry: expect.objectContaining({ entityId: 'nda-1' }) }),
    ]);

    const spool = new HeldSpool();
    const spooled = setup({ writeTimeoutMs: 60_000 }, spool);
    await spooled.service.beforeApplicationShutdown();
    const logged = spooled.service.log(entry(2));
    await eventuallyTrue(() => spool.appends.length === 1, 1000);
    spool.appends[0].release();
    await logged;
    expect(spooled.of('audit.spooled')).toEqual([expect.objectContaining({ entityId: 'nda-2', reason: 'shutdown' })]);
    expect(spooled.service.status()).toMatchObject({ buffered: 0, dropped: 0 });
  });

  it('finishes shutdown in bounded time while a long spool replay runs, leaving the rest spooled', async () => {
    const spool = new HeldSpool();
    spool.entries = 10_000;
    let batches = 0;
    spool.replay = async (insert) => {
      for (; batches < 100; batches += 1) await insert([normalizer.normalize(entry(batches)).record]);
      return 100;
    };
    const { service, repository } = setup({ writeTimeoutMs: 100 }, spool);
    repository.behaviour = () => new Promise<Outcome>((resolve) => setTimeout(() => resolve('ok'), 30));
    service.onApplicationBootstrap();
    await eventuallyTrue(() => batches > 0, 1000);
    await service.beforeApplicationShutdown();
    expect(batches).toBeLessThan(20);
  });

  it('stops draining a slow ring 2 × writeTimeoutMs into shutdown, and spools the rest', async () => {
    const spool = new HeldSpool();
    spool.holding = false;
    const { service, repository } = setup({ batchSize: 1, writeTimeoutMs: 100, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 }, spool);
    repository.behaviour = () => 'fail';
    await Promise.all(Array.from({ length: 20 }, (_, n) => service.log(entry(n))));
    expect(service.status()).toMatchObject({ state: 'down', buffered: 20 });
    // Each batch commits just under the write timeout: a full drain would take 20 × 90 ms.
    repository.behaviour = () => new Promise<Outcome>((resolve) => setTimeout(() => resolve('ok'), 90));
    const t0 = Date.now();
    await service.beforeApplicationShutdown();
    // The bound: no write starts after 2 × 100 ms, and the last one started ends within 100 ms (plus slack for a busy host).
    expect(Date.now() - t0).toBeLessThan(2 * 100 + 100 + 200);
    expect(repository.committed.size).toBeGreaterThan(0);
    expect(repository.committed.size + spool.entries).toBe(20);
  });
});

describe('AuditService in sync mode without a spool', () => {
  it('answers once the entry the database refused is in the ring with its stderr line', async () => {
    const { service, repository, of } = setup({ mode: 'sync', retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    repository.behaviour = () => 'fail';
    await service.log(entry(1));
    expect(service.status()).toMatchObject({ state: 'down', buffered: 1, pending: 0 });
    expect(of('audit.buffered')).toEqual([
      expect.objectContaining({ entityId: 'nda-1', entry: expect.objectContaining({ entityId: 'nda-1' }) }),
    ]);
  });

  it('counts in stderrLate and stderrDropped an entry whose line stderr refused (its reader gone)', async () => {
    const { service, repository } = setup({ mode: 'sync', retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 }, null, new ConsoleSink());
    const refused: string[] = [];
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown, ...rest: unknown[]) => {
      refused.push(String(chunk));
      const done = rest.find((arg) => typeof arg === 'function') as ((error?: Error | null) => void) | undefined;
      if (done) process.nextTick(done, Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      return false;
    });
    repository.behaviour = () => 'fail';
    await service.log(entry(1));
    expect(refused.map((line) => (JSON.parse(line) as { event: string }).event)).toContain('audit.buffered');
    expect(service.status()).toMatchObject({ state: 'down', buffered: 1, stderrLate: 1, stderrDropped: refused.length });
  });
});

describe('AuditService and an entry the table refuses for its content', () => {
  it('commits the rest of its batch, quarantines it with a line and an alert, and stays up', async () => {
    const { service, repository, reporter, of } = setup();
    repository.refused.add('nda-2');
    await Promise.all([1, 2, 3, 4].map((n) => service.log(entry(n))));
    expect([...repository.committed.keys()]).toHaveLength(3);
    expect(service.status()).toMatchObject({ state: 'up', buffered: 0, quarantined: 1 });
    expect(of('audit.quarantined')).toEqual([
      expect.objectContaining({
        entityId: 'nda-2',
        error: expect.objectContaining({ code: '23514' }),
        entry: expect.objectContaining({ entityId: 'nda-2' }),
      }),
    ]);
    expect(of('audit.db_write_failed')).toEqual([]);
    expect(reporter.entriesQuarantined).toHaveBeenCalledWith(expect.objectContaining({ count: 1 }));
  });

  it("a split under way at shutdown stops at shutdown's deadline (2 × writeTimeoutMs), not at the end of its own budget", async () => {
    const { service, repository } = setup({ writeTimeoutMs: 200 });
    // A slow database: each round trip takes 190 ms, just under the write timeout.
    repository.behaviour = () => sleep(190).then(() => 'ok' as const);
    repository.refused.add('nda-5');
    // 256 entries, one refused: about 17 round trips (3.2 s); the split's own budget is 8 × 200 ms.
    const logged = Array.from({ length: 256 }, (_, n) => service.log(entry(n)));
    await sleep(250);
    const started = Date.now();
    await service.beforeApplicationShutdown();
    expect(Date.now() - started).toBeLessThan(1000);
    await Promise.all(logged);
  });

  it('does not hold back the recovery flush of the ring', async () => {
    const { service, repository, of } = setup({ retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    repository.behaviour = () => 'fail';
    await Promise.all([1, 2, 3].map((n) => service.log(entry(n))));
    repository.refused.add('nda-1');
    repository.behaviour = () => 'ok';
    jumpPastCoolDown();
    await service.log(entry(4));
    await eventuallyTrue(() => of('audit.recovered').length === 1, 1000);
    expect(service.status()).toMatchObject({ state: 'up', buffered: 0 });
    expect(repository.committed.size).toBe(3);
    expect(of('audit.quarantined').map((f) => f.entityId)).toEqual(['nda-1']);
  });

  it('does not hold back a spool segment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'audit-spool-'));
    try {
      const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 1024 * 1024 });
      await spool.append([1, 2, 3].map((n) => normalizer.normalize(entry(n)).record));
      const { service, repository, of } = setup({}, spool);
      repository.refused.add('nda-3');
      service.onApplicationBootstrap();
      await eventuallyTrue(() => spool.entries === 0, 2000);
      expect(service.status()).toMatchObject({ state: 'up', spooled: 0 });
      expect(repository.committed.size).toBe(2);
      expect(of('audit.quarantined').map((f) => f.entityId)).toEqual(['nda-3']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('AuditService and segments another process left in a shared spool directory', () => {
  it('replays them while up, without waiting for an outage or a restart', async () => {
    const spool = new HeldSpool();
    spool.holding = false;
    const left = [1, 2].map((n) => normalizer.normalize(entry(n)).record);
    // What FileSpool does at each replay: adopt the segments of a process that has gone.
    let adoptable: AuditRecord[] = [];
    spool.replay = async (insert) => {
      const adopted = adoptable;
      adoptable = [];
      if (adopted.length > 0) await insert(adopted);
      return adopted.length;
    };
    const { service, repository } = setup({}, spool);
    service.onApplicationBootstrap();
    await sleep(50);
    adoptable = left;
    await eventuallyTrue(() => repository.committed.size === 2, 5000);
    expect(service.status()).toMatchObject({ state: 'up' });
  });
});

describe('AuditService and entries it cannot read', () => {
  it('counts values that could not be read, and keeps the entry', async () => {
    const { service, repository } = setup();
    const changes = Object.defineProperty({ title: 'T' }, 'notes', {
      enumerable: true,
      get() {
        throw new Error('no');
      },
    });
    await service.log({ ...entry(1), changes });
    expect(repository.committed.size).toBe(1);
    expect(service.status().unreadable).toBe(1);
  });

  it('counts an entry that could not be normalized at all as dropped, with what could be read of it', async () => {
    const { service, reporter, of } = setup();
    jest.spyOn(AuditEntryNormalizer.prototype, 'normalize').mockImplementation(() => {
      throw new Error('normalizer broke');
    });
    await expect(service.log(entry(1))).resolves.toBeUndefined();
    expect(service.status().dropped).toBe(1);
    expect(of('audit.dropped')).toEqual([
      expect.objectContaining({ reason: 'normalize_failed', action: 'nda_created', entityId: 'nda-1', error: 'Error: normalizer broke' }),
    ]);
    expect(reporter.entriesDropped).toHaveBeenCalledWith(expect.objectContaining({ reason: 'normalize_failed', count: 1 }));
  });
});
