import { AUDIT_EVENTS, AuditService } from '../src/audit';
import { DbHealthIndicator } from '../src/audit/audit-db.health';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { TcpProxy } from './support/tcp-proxy';

// A sealing failure retries with backoff and catches up by itself (INTEGRITY.md): the sealer checks
// out its own client with client-side deadlines (connect, each round trip), so a silent partition
// (packets dropped) fails the attempt and destroys the connection; once the network is back, new
// rows are sealed, or the failure is reported.
describe('the sealer in a silent partition', () => {
  let db: TestPostgres;
  let proxy: TcpProxy;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('trail');
    proxy = await TcpProxy.start(db.port);
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await db?.stop();
  });

  it('after a 2-second partition, a new row is sealed or the failure is reported', async () => {
    const stderr = new StderrCapture();
    const url = db.url('trail').replace(`:${db.port}/`, `:${proxy.port}/`);
    const app = await startSealingApp(url, { writeTimeoutMs: 500, integrity: { intervalMs: 200 } });
    try {
      const audit = app.get(AuditService);
      await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'before' });
      await eventually(() => stderr.of(AUDIT_EVENTS.sealed).some((line) => Number(line.rows) > 0), 10_000, 'the first seal');
      proxy.blackhole();
      await sleep(2000);
      proxy.forward();
      await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'after' });
      await eventually(
        async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'after'`, [], 'trail')).length === 1,
        20_000,
        'the row written after the partition',
      );
      const outcome = await eventually(
        () => {
          const sealedRows = stderr.of(AUDIT_EVENTS.sealed).reduce((sum, line) => sum + Number(line.rows), 0);
          if (sealedRows >= 2) return 'sealed';
          if (stderr.of(AUDIT_EVENTS.sealFailed).length > 0) return 'reported';
          return undefined;
        },
        15_000,
        'the new row sealed, or a seal_failed line',
      ).catch(() => {
        const health = app.get(DbHealthIndicator).isHealthy().audit_db as unknown as { integrity: unknown };
        return `neither, health ${JSON.stringify(health.integrity)}`;
      });
      expect(outcome).toMatch(/^(sealed|reported)$/);
    } finally {
      await app.close();
      stderr.restore();
    }
  }, 90_000);
});
