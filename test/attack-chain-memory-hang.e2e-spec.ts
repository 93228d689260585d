import { promises as fsp } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { AUDIT_EVENTS, AuditService } from '../src/audit';
import { DbHealthIndicator } from '../src/audit/audit-db.health';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// ATTACK (helper I): INTEGRITY.md promises that the sealer is "never in the way" and that "a
// failure is an audit.seal_failed line, a Sentry warning, and /health details; it retries with
// backoff … and catches up by itself"; the README's failure table bounds every spool or quarantine
// file operation by writeTimeoutMs. The chain memory's write (<spoolDir>/integrity/, fsync) has no
// deadline: on a hung disk the sealer's attempt never ends, and since the next attempt is chained
// after it, nothing is sealed again, with no seal_failed line and `failures: 0` in /health.
describe('attack: the chain memory on a hung disk', () => {
  let db: TestPostgres;
  let dir: string;
  let release: () => void = () => undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('trail');
    dir = await mkdtemp(join(tmpdir(), 'audit-attack-memory-'));
  }, 60_000);

  afterAll(async () => {
    release();
    await db?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a later row is still sealed, or the failure is reported, within a few write timeouts', async () => {
    // The fsync of the chain memory's file never returns (until the test lets it go), as on a hung disk.
    const realOpen = fsp.open.bind(fsp);
    const held: (() => void)[] = [];
    let released = false;
    const spy = jest.spyOn(fsp, 'open').mockImplementation(async (path, flags, mode) => {
      const handle = await realOpen(path, flags, mode);
      if (!String(path).includes(`${sep}integrity${sep}`)) return handle;
      return new Proxy(handle, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property, target);
          if (property === 'sync' && !released) {
            return async () => {
              await new Promise<void>((resolve) => held.push(resolve));
              return target.sync();
            };
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    });
    release = () => {
      released = true;
      held.splice(0).forEach((resolve) => resolve());
      spy.mockRestore();
    };
    const stderr = new StderrCapture();
    const app = await startSealingApp(db.url('trail'), {
      spoolDir: join(dir, 'spool'),
      writeTimeoutMs: 1000,
      integrity: { intervalMs: 200 },
    });
    try {
      const audit = app.get(AuditService);
      await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'first' });
      await eventually(() => stderr.of(AUDIT_EVENTS.sealed).some((line) => Number(line.rows) > 0), 10_000, 'the first seal');
      await eventually(() => held.length > 0, 10_000, 'the chain memory write under way');
      await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'second' });
      const outcome = await eventually(
        () => {
          const sealedRows = stderr.of(AUDIT_EVENTS.sealed).reduce((sum, line) => sum + Number(line.rows), 0);
          if (sealedRows >= 2) return 'sealed';
          if (stderr.of(AUDIT_EVENTS.sealFailed).length > 0) return 'reported';
          return undefined;
        },
        10_000,
        'the second row sealed, or a seal_failed line',
      ).catch(() => {
        const health = app.get(DbHealthIndicator).isHealthy().audit_db as unknown as { integrity: unknown };
        return `neither, health ${JSON.stringify(health.integrity)}`;
      });
      expect(['sealed', 'reported']).toContain(outcome);
    } finally {
      release();
      await app.close();
      stderr.restore();
    }
  }, 60_000);
});
