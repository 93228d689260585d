import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { startSealingApp } from './support/integrity';
import { sleep, TestPostgres } from './support/postgres';

// docs/FAILURES.md, "A transaction cut off by a partition": a command's transaction sets
// idle_in_transaction_session_timeout (3 × --timeout-ms + 1 s, at least 10 s) so that one whose
// client stops making progress ends on the server, with its locks; the command client's keepalive
// (`SELECT 1` every third of that limit) rests on "A live client never waits that long between two
// statements of its own". audit-archive writing its file to a disk that never answers (a hard NFS
// mount; here a FIFO no one reads, on which open() blocks) waits for ever, and the keepalive keeps
// its repeatable-read transaction, its snapshot and its ACCESS SHARE lock on the month's partition
// alive for as long: retention of that month (lock_timeout) fails at every run, vacuum is held back,
// and the command never exits. Before the keepalive the server ended it after 10 s.
const TIMEOUT_MS = 1000;
const IDLE_LIMIT_MS = 10_000;

describe('probe: audit-archive whose --out disk hangs', () => {
  let db: TestPostgres;
  let dir: string;
  const month = new Date().toISOString().slice(0, 7);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'probe-archive-'));
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

  it('does not hold its transaction (and the partition lock) past twice the idle limit', async () => {
    const out = join(dir, 'out');
    mkdirSync(out);
    const fifo = join(out, `audit-${month}.ndjson.gz.partial`);
    execFileSync('mkfifo', [fifo]);
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    let status: number | undefined;
    const running = runArchive(['--url', db.url('base'), '--month', month, '--out', out, '--timeout-ms', String(TIMEOUT_MS)], {}, io).then(
      (code) => (status = code),
    );
    try {
      await sleep(2 * IDLE_LIMIT_MS);
      const held = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'base' AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()`,
        [],
        'base',
      );
      expect({ transactionsHeld: held[0].n, exited: status !== undefined }).toEqual({ transactionsHeld: 0, exited: expect.any(Boolean) });
    } finally {
      // Unblock the writer so that the command ends and leaves no handle behind.
      const reader = createReadStream(fifo);
      reader.resume();
      await running;
      reader.destroy();
    }
  }, 90_000);
});
