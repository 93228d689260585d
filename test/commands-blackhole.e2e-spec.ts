import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AUDIT_EVENTS, AUDIT_MIGRATIONS, AuditSealer, AuditService } from '../src/audit';
import { AuditEntryNormalizer } from '../src/audit/audit-entry';
import { formatEventLine } from '../src/audit/sinks';
import { type Build, buildProject } from './support/build';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { sleep, TestPostgres } from './support/postgres';
import { TcpProxy } from './support/tcp-proxy';

// The operator's commands, built and run as child processes, against a database that accepts and
// never answers (docs/FAILURES.md, "The commands' deadlines"): from the start (no connection is
// ever ready) and from some statement on (the server stops answering mid-command). Each gives up
// within about 3 × --timeout-ms with exit status 3 and a message that says so (audit-erase: 2 when
// its COMMIT went unanswered, the outcome not known, as before). A live statement that lasts far
// longer than --timeout-ms (here a wait on a lock) is not cut. audit-verify's --jobs connections are bounded too.
const TIMEOUT_MS = 500;
// Far beyond 3 × TIMEOUT_MS plus a start of node on a busy machine; a command still running then is killed and fails its test.
const KILL_AFTER_MS = 25_000;
const ENTRY_KEY = `k1:${randomBytes(32).toString('base64')}`;

interface Run {
  code: number | null;
  out: string;
  err: string;
}

describe('the commands against a database that never answers', () => {
  let build: Build;
  let db: TestPostgres;
  let proxy: TcpProxy;
  let work: string;
  let cloudwatch: string;

  const run = (cli: string, args: string[], url: string): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [join(build.dir, 'src/audit', cli), ...args], {
        env: { ...build.env, AUDIT_DATABASE_URL: url, DATABASE_URL: '', AUDIT_INTEGRITY_ENTRY_KEY: ENTRY_KEY },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const kill = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
      child.on('close', (code) => {
        clearTimeout(kill);
        resolve({ code, out: out.trim(), err: err.trim() });
      });
    });
  const viaProxy = () => db.url('cli').replace(`:${db.port}/`, `:${proxy.port}/`);
  const timeout = ['--timeout-ms', String(TIMEOUT_MS)];
  const commands: [string, string, string[]][] = [
    ['audit-verify', 'integrity/verify.cli.js', []],
    ['audit-retention', 'lifecycle/retention.cli.js', ['--months', '1', '--dry-run']],
    ['audit-archive', 'lifecycle/archive.cli.js', ['--month', '2026-01', '--out', 'ARCHIVE']],
    ['audit-erase', 'privacy/erase.cli.js', ['--user', 'u-erased', '--by', 'dpo']],
    ['audit-replay', 'replay/replay.cli.js', ['CLOUDWATCH']],
  ];
  let archives = 0;
  const argsOf = (args: string[]) =>
    args.map((a) => (a === 'ARCHIVE' ? join(work, `archive-${++archives}`) : a === 'CLOUDWATCH' ? cloudwatch : a));

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('cli');
    const migrator = new DataSource({ type: 'postgres', url: db.url('cli'), migrations: [...AUDIT_MIGRATIONS] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    work = await mkdtemp(join(tmpdir(), 'audit-commands-blackhole-'));
    const record = new AuditEntryNormalizer(['password'], 64 * 1024).normalize({
      action: 'nda_created',
      entityType: 'NDA',
      entityId: 'replayed-1',
      userId: 'u1',
    }).record;
    cloudwatch = join(work, 'export.log');
    await writeFile(cloudwatch, `${formatEventLine(AUDIT_EVENTS.buffered, 'warn', { auditId: record.id, entry: record })}\n`);
    build = buildProject();
  }, 180_000);

  beforeEach(async () => {
    proxy = await TcpProxy.start(db.port);
  });

  afterEach(async () => {
    await proxy?.stop();
  });

  afterAll(async () => {
    await db?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    if (build) await rm(build.dir, { recursive: true, force: true });
  });

  it('each command gives up a connection that is never ready: exit 3, and says so', async () => {
    proxy.blackhole();
    const runs = await Promise.all(commands.map(([, cli, args]) => run(cli, [...timeout, ...argsOf(args)], viaProxy())));
    const outcomes = runs.map((r, i) => ({
      command: commands[i][0],
      code: r.code,
      said: /(gave|got) no connection within 500 ms/.test(r.err),
    }));
    expect(outcomes).toEqual(commands.map(([command]) => ({ command, code: 3, said: true })));
  }, 120_000);

  it.each([
    ['audit-verify', 'REPEATABLE READ'],
    ['audit-retention', 'BEGIN'],
    ['audit-archive', 'REPEATABLE READ'],
    ['audit-erase', 'statement_timeout'],
    ['audit-replay', 'INSERT INTO'],
  ])(
    '%s gives up a server that stops answering at its %s statement: exit 3, and says so',
    async (name, statement) => {
      const [, cli, args] = commands.find(([command]) => command === name) as [string, string, string[]];
      proxy.blackholeWhenSent(statement);
      const result = await run(cli, [...timeout, ...argsOf(args)], viaProxy());
      expect({ code: result.code, err: result.err }).toEqual({
        code: 3,
        err: expect.stringMatching(
          name === 'audit-erase' ? /got no answer within 1000 ms; nothing was erased/ : /stopped answering/,
        ) as string,
      });
      expect(proxy.swallowed).toBeGreaterThan(0);
    },
    60_000,
  );

  it('audit-erase whose COMMIT goes unanswered exits 2 as before: its outcome is not known', async () => {
    proxy.blackholeWhenSent('COMMIT');
    const result = await run('privacy/erase.cli.js', [...timeout, '--user', 'u-commit', '--by', 'dpo'], viaProxy());
    expect({ code: result.code, err: result.err }).toEqual({
      code: 2,
      err: expect.stringMatching(/may or may not have committed/) as string,
    });
  }, 60_000);

  it.each([
    ['audit-verify', 'integrity/verify.cli.js', [] as string[]],
    ['audit-archive', 'lifecycle/archive.cli.js', ['--month', '2026-01', '--out', 'ARCHIVE']],
  ])(
    '%s waits out a statement that runs (waits on a lock) far longer than --timeout-ms, and finishes',
    async (_name, cli, args) => {
      const baseline = await run(cli, ['--timeout-ms', '300', ...argsOf(args)], db.url('cli'));
      const locker = await db.connect('cli');
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
        const running = run(cli, ['--timeout-ms', '300', ...argsOf(args)], db.url('cli'));
        // Asked on another connection: inside the locker's transaction, pg_stat_activity stays as it first read it.
        await eventually(
          async () =>
            (await db.query(`SELECT 1 FROM pg_stat_activity WHERE datname = 'cli' AND wait_event_type = 'Lock'`, [], 'cli')).length > 0,
          20_000,
          'the command waiting on the lock',
        );
        // Many times --timeout-ms: a deadline meant for a dead peer would cut the wait.
        await sleep(2000);
        await locker.query('COMMIT');
        const result = await running;
        // The same answer as without the lock (archives named apart: each run writes its own directory).
        const named = (text: string | undefined) => text?.replace(/archive-\d+/g, 'archive-N');
        const answer = (r: Run) => ({ code: r.code, err: named(r.err), last: named(r.out.split('\n').at(-1)) });
        expect(answer(result)).toEqual(answer(baseline));
        expect(result.code === 0 || result.code === 1).toBe(true);
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        await locker.end();
      }
    },
    90_000,
  );

  it('audit-verify gives up one of its --jobs connections that stops answering: exit 3, and says so', async () => {
    // A sealed row: the seals' rows are checked on connections of their own (--jobs), on the first one's snapshot.
    const app = await startSealingApp(db.url('cli'), { integrity: { intervalMs: 3_600_000 } });
    try {
      await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'sealed-1' });
      await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'sealed-1'`, [], 'cli')).length === 1);
      await app.get(AuditSealer).sealNow();
    } finally {
      await app.close();
    }
    proxy.blackholeWhenSent('SET TRANSACTION SNAPSHOT');
    const result = await run('integrity/verify.cli.js', [...timeout, '--jobs', '2'], viaProxy());
    expect({ code: result.code, err: result.err }).toEqual({ code: 3, err: expect.stringMatching(/stopped answering/) as string });
    expect(proxy.swallowed).toBeGreaterThan(0);
  }, 60_000);
});
