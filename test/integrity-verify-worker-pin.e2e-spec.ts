import { AuditSealer, AuditService } from '../src/audit';
import { PIN_SEARCH_PATH_SQL } from '../src/audit/integrity/search-path';
import { runVerify } from '../src/audit/integrity/verify-command';
import { startSealingApp } from './support/integrity';
import { sleep, TestPostgres } from './support/postgres';
import { StatementFaultProxy } from './support/statement-fault-proxy';

// docs/FAILURES.md, "The commands' deadlines": every connection audit-verify opens is ended when
// the command ends, a worker whose session pin (`SET search_path`) fails included: the command
// exits 2 with the server's error and leaves no connection open (one left open would keep the
// process from exiting, and its session on the server).
describe('audit-verify --jobs whose worker connection cannot pin its session', () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('base');
    const app = await startSealingApp(db.url('base'), { integrity: { intervalMs: 3_600_000 } });
    try {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => app.get(AuditService).log({ action: 'nda_created', entityId: `n-${i}`, userId: 'alice' })),
      );
      await app.get(AuditSealer).sealNow();
    } finally {
      await app.close();
    }
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('fails with the server error and ends every connection it opened', async () => {
    // The first connection's pin goes through; every worker's is refused by the server.
    const proxy = await StatementFaultProxy.start(db.port, PIN_SEARCH_PATH_SQL.replace('SET LOCAL', 'SET'), 1);
    const url = db.url('base').replace(`:${db.port}/`, `:${proxy.port}/`);
    const errors: string[] = [];
    try {
      const status = await runVerify(
        ['--url', url, '--jobs', '2', '--timeout-ms', '5000'],
        {},
        { out: () => undefined, err: (l) => errors.push(l) },
      );
      for (let waited = 0; proxy.open > 0 && waited < 5000; waited += 50) await sleep(50);
      expect({ status, failedPins: proxy.failed > 0, open: proxy.open }).toEqual({ status: 2, failedPins: true, open: 0 });
      expect(errors).toEqual([expect.stringMatching(/^audit-verify failed: 22012: division by zero/)]);
    } finally {
      await proxy.stop();
    }
  }, 60_000);
});
