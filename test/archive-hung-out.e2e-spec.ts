import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { startSealingApp } from './support/integrity';
import { sleep, TestPostgres } from './support/postgres';

// docs/FAILURES.md, "A transaction cut off by a partition" and "The commands' deadlines":
// audit-archive's file calls on --out have the deadline --timeout-ms. Writing to a disk that never
// answers (a hard NFS mount; here a FIFO no one reads, on which open() blocks) ends the command
// with AUDIT_DISK_TIMEOUT and exit status 2, its transaction rolled back (its snapshot and its
// ACCESS SHARE lock on the month's partition released), and no archive file written: the
// keepalive never holds the transaction for a command stuck on its disk.
const TIMEOUT_MS = 1000;
/** Far more than the command needs (about TIMEOUT_MS after its open), far less than never. */
const ENDS_WITHIN_MS = 30_000;

describe('audit-archive whose --out disk hangs', () => {
  let db: TestPostgres;
  let dir: string;
  const month = new Date().toISOString().slice(0, 7);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'archive-hung-'));
    db = await TestPostgres.start();
    await db.createDatabase('base');
    const app = await startSealingApp(db.url('base'), { integrity: { intervalMs: 3_600_000 } });
    try {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => app.get(AuditService).log({ action: 'nda_created', entityId: `n-${i}`, userId: 'alice' })),
      );
      await app.get(AuditSealer).sealNow();
    } finally {
      await app.close();
    }
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ends with AUDIT_DISK_TIMEOUT and exit status 2, its transaction rolled back, no archive written', async () => {
    const out = join(dir, 'out');
    mkdirSync(out);
    const fifo = join(out, `audit-${month}.ndjson.gz.partial`);
    execFileSync('mkfifo', [fifo]);
    const errors: string[] = [];
    const io = { out: () => undefined, err: (l: string) => errors.push(l) };
    let status: number | undefined;
    const running = runArchive(['--url', db.url('base'), '--month', month, '--out', out, '--timeout-ms', String(TIMEOUT_MS)], {}, io).then(
      (code) => (status = code),
    );
    try {
      for (let waited = 0; status === undefined && waited < ENDS_WITHIN_MS; waited += 100) await sleep(100);
      const held = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'base' AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()`,
        [],
        'base',
      );
      expect({ status, transactionsHeld: held[0].n }).toEqual({ status: 2, transactionsHeld: 0 });
      expect(errors).toEqual([expect.stringMatching(/^audit-archive failed: AUDIT_DISK_TIMEOUT: open did not return within 1000 ms/)]);
      expect(readdirSync(out).filter((name) => !name.endsWith('.partial'))).toEqual([]);
    } finally {
      // Unblock the hung open() (and the command, before the fix) so that nothing is left behind.
      const reader = createReadStream(fifo);
      const closed = new Promise<void>((resolve) => reader.once('close', () => resolve()));
      reader.resume();
      await running;
      await closed;
    }
  }, 90_000);
});
