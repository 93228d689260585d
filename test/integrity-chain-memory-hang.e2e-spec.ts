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

// The sealer is never in the way and catches up by itself (INTEGRITY.md): the chain memory's file
// operations in <spoolDir>/integrity/ are bounded by writeTimeoutMs like the spool's, so a hung disk
// fails the attempt (audit.seal_failed, `failures` in /health) instead of stalling the sealer, and
// the attempts after it go on.
describe('the chain memory on a hung disk', () => {
  let db: TestPostgres;
  let dir: string;
  let release: () => void = () => undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('trail');
    dir = await mkdtemp(join(tmpdir(), 'audit-chain-memory-hang-'));
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
