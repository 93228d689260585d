import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ChaosResult, runChaos } from '../chaos/schedule';
import { PHASES } from '../chaos/faults';
import { summaryLine } from '../chaos/report';
import { type Build, buildProject } from './support/build';

// `npm run chaos` in short: the whole fault schedule (each fault held about a second) against the
// example app under concurrent load, then every acknowledged mutation must have exactly one row.
describe('chaos: the fault schedule under load', () => {
  let build: Build;
  let result: ChaosResult;

  beforeAll(async () => {
    build = buildProject();
    // A ring of 10 overflows within the second the database is down, even on a loaded machine.
    result = await runChaos({
      main: join(build.dir, 'src/main.js'),
      env: build.env,
      phaseMs: 1000,
      workers: 4,
      catchUpMs: 5000,
      overflowBufferSize: 10,
    });
  }, 180_000);

  afterAll(async () => {
    if (build) await rm(build.dir, { recursive: true, force: true });
  });

  const phase = (name: string) => result.phases.find((p) => p.phase === name)!;
  const events = (name: string, event: string) => phase(name).events[event] ?? 0;

  it('records every acknowledged mutation exactly once', () => {
    expect(result.settled).toBe(true);
    expect(result.missingEntries).toEqual([]);
    expect(result.duplicatedEntries).toEqual([]);
    expect(result.recorded).toBe(result.acknowledged);
    expect(result.acknowledged).toBeGreaterThan(0);
  });

  it('ends with a sealed trail that audit-verify finds clean, against the witness lines and the key', () => {
    expect(result.integrity.firstAnomalies).toEqual([]);
    expect(result.integrity).toMatchObject({ clean: true, rowsUnsealed: 0 });
    expect(result.integrity.rowsVerified).toBeGreaterThanOrEqual(result.recorded);
    // Every row was written by the apps with the entry key: each is authentic, none only "before entry authentication".
    expect(result.integrity.rowsAuthentic).toBe(result.integrity.rowsVerified);
    expect(result.integrity.sealsVerified).toBeGreaterThan(1);
    expect(summaryLine(result)).toMatch(
      /integrity: verify clean \(\d+ rows, \d+ seals, \d+ witness lines, entry key checked: \d+ rows authentic\)$/,
    );
  });

  it('catches up after every phase by itself: up, nothing buffered, nothing spooled', () => {
    expect(result.phases.filter((p) => p.caughtUpMs === null).map((p) => [p.phase, p.healthAfter])).toEqual([]);
  });

  it('applies every fault with requests acknowledged in each phase', () => {
    expect(result.faults).toEqual(['kill-db', 'lock', 'slow', 'revoke', 'overflow', 'rolling-deploy', 'kill-app', 'fleet']);
    expect(result.phases.map((p) => p.phase)).toEqual(PHASES.map((p) => p.name));
    for (const p of result.phases) expect([p.phase, p.acknowledged > 0]).toEqual([p.phase, true]);
  });

  it('really hits the fallbacks: failed writes spooled, the ring overflowing, the app killed', () => {
    for (const name of ['kill-db', 'lock', 'slow', 'revoke', 'rolling-deploy', 'kill-app']) {
      expect([name, events(name, 'sync:db_write_failed') > 0, events(name, 'sync:spooled') > 0]).toEqual([name, true, true]);
    }
    expect(events('overflow', 'async:evicted')).toBeGreaterThan(0);
    expect(phase('kill-app').notAcknowledged).toBeGreaterThan(0);
  });

  it('runs a fleet of three on one audit database: each restarted in turn, one killed, the sealing one stopped', () => {
    expect(result.fleet).toMatchObject({ rolled: ['fleet-1', 'fleet-2', 'fleet-3'], killed: 'fleet-2' });
    // The sealing app, caught with its seal waiting on a lock, shut down by itself, before the 10 s SIGKILL.
    expect(result.fleet?.sealerStopped).toEqual(expect.any(String));
    expect(result.fleet?.sealerExitedByItself).toBe(true);
    // A hold of audit_seal catches a sealer with its INSERT waiting (else: the sessions seen, to tell why).
    expect([result.fleet?.sealerCaughtMidSeal, result.fleet?.sessions]).toEqual([true, undefined]);
    // Every instance sealed its share or left it to another: the seals came from more than one app over the run.
    const sealers = new Set(result.phases.flatMap((p) => Object.keys(p.events).filter((e) => e.endsWith(':sealed'))));
    expect(sealers.size).toBeGreaterThan(1);
    for (const name of ['fleet-1', 'fleet-2', 'fleet-3'])
      expect([name, (result.fleet?.acknowledgedBy?.[name] ?? 0) > 0]).toEqual([name, true]);
    expect(phase('fleet').notAcknowledged).toBeGreaterThan(0);
  });

  it("keeps what waits for the database within the ring's bound, and reports the peaks", () => {
    expect(result.peaks.sync.pending).toBeGreaterThan(0);
    expect(result.peaks.sync.pending).toBeLessThanOrEqual(1000);
    expect(result.peaks.sync.rssBytes).toBeGreaterThan(0);
    expect(summaryLine(result)).toMatch(
      /peak pending: (?:[\w-]+ \d+, )+[\w-]+ \d+; peak RSS: (?:[\w-]+ \d+ MiB, )+[\w-]+ \d+ MiB; integrity/,
    );
  });
});
