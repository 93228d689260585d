import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type SpoolRejection } from './audit-spool';
import { FileSpool } from './file-spool';

const root = resolve(__dirname, '../../..');

// The spool as a separate process uses it: compiled, against the real disk and kernel limits.
// The compiled module runs from a temporary directory: its packages resolve from the project's.
const childEnv = { ...process.env, NODE_PATH: join(root, 'node_modules') };

describe('FileSpool in real processes', () => {
  let work: string;
  let build: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'spool-process-'));
    build = join(work, 'build');
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const flags = ['--module', 'commonjs', '--target', 'ES2022', '--lib', 'ES2024', '--strict', '--skipLibCheck', '--types', 'node'];
    execFileSync(process.execPath, [tsc, ...flags, '--outDir', build, join(root, 'src/audit/spool/index.ts')], {
      cwd: root,
      stdio: 'pipe',
    });
  }, 60_000);
  afterAll(() => rm(work, { recursive: true, force: true }));

  /** Writes a child script that gets `spool` (the compiled module), `record(n)` and `dir` (argv[2]). */
  const script = async (name: string, body: string) => {
    const path = join(work, name);
    await writeFile(
      path,
      `const spool = require(${JSON.stringify(join(build, 'spool'))});
const { AuditEntryNormalizer } = require(${JSON.stringify(join(build, 'audit-entry'))});
const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n) => normalizer.normalize({ action: 'nda_created', entityId: 'nda-' + n, changes: { pad: 'x'.repeat(100 + ((n * 37) % 300)) } }).record;
const dir = process.argv[2];
(async () => {
${body}
})().catch((error) => { console.error(error); process.exit(3); });
`,
    );
    return path;
  };

  const replayAll = async (dir: string) => {
    const spool = await FileSpool.open(dir, { maxBytes: 1024 ** 3, segmentBytes: 1024 * 1024 });
    const inserted: string[] = [];
    const rejected: SpoolRejection[] = [];
    const entries = spool.entries;
    await spool.replay(
      async (records) => void inserted.push(...records.map((r) => r.entityId!)),
      100,
      (r) => rejected.push(r),
    );
    await spool.close();
    return { entries, inserted, rejected };
  };

  it('under a file size limit (EFBIG, short writes), keeps exactly the acknowledged entries, every line whole', async () => {
    const dir = join(work, 'fsize');
    const child = await script(
      'fsize.js',
      `const s = await spool.FileSpool.open(dir, { maxBytes: 1024 ** 3, segmentBytes: 1024 * 1024 });
for (let n = 0; n < 120; n += 1) {
  const result = await s.append([record(n)]);
  console.log(JSON.stringify({ n, kept: result.kept.length, error: result.error ?? null }));
}
await s.close();`,
    );
    // 16 KiB: bash counts `ulimit -f` in KiB. Node ignores SIGXFSZ, so writes past it fail with EFBIG.
    const run = spawnSync('bash', ['-c', 'ulimit -f 16; exec "$0" "$@"', process.execPath, child, dir], {
      encoding: 'utf8',
      env: childEnv,
    });
    expect([run.status, run.stderr]).toEqual([0, '']);
    const results = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { n: number; kept: number; error: string | null });
    const acknowledged = results.filter((r) => r.kept === 1).map((r) => `nda-${r.n}`);
    expect(results).toHaveLength(120);
    expect(acknowledged.length).toBeGreaterThan(10);
    expect(results.filter((r) => r.kept === 0).every((r) => /EFBIG/.test(r.error ?? ''))).toBe(true);
    expect(acknowledged.length).toBeLessThan(120);

    expect(await replayAll(dir)).toEqual({ entries: acknowledged.length, inserted: acknowledged, rejected: [] });
  });

  describe('two processes on one directory', () => {
    const children: ChildProcess[] = [];
    afterEach(() => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')));

    /** Runs a child, collecting the words it prints after `prefix` (one a line). */
    const run = (path: string, dir: string) => {
      const child = spawn(process.execPath, [path, dir], { stdio: ['pipe', 'pipe', 'inherit'], env: childEnv });
      children.push(child);
      const lines: string[] = [];
      let rest = '';
      child.stdout!.on('data', (data: Buffer) => {
        const text = rest + data.toString();
        const parts = text.split('\n');
        rest = parts.pop()!;
        lines.push(...parts);
      });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      const words = (prefix: string) => lines.filter((l) => l.startsWith(`${prefix} `)).map((l) => l.slice(prefix.length + 1));
      return { child, exited, words };
    };
    const until = async (what: () => boolean, label: string) => {
      for (let waited = 0; !what(); waited += 20) {
        if (waited > 15_000) throw new Error(`timed out waiting for ${label}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };

    it('replays only its own and abandoned segments while the other appends; adopts the other once it is killed', async () => {
      const dir = join(work, 'shared');
      const options = '{ maxBytes: 1024 ** 3, segmentBytes: 16 * 1024, leaseMs: 60_000 }';
      const appender = await script(
        'appender.js',
        `const s = await spool.FileSpool.open(dir, ${options});
for (let n = 0; ; n += 1) {
  const result = await s.append([record(n)]);
  if (result.kept.length === 1) console.log('acked nda-' + n);
  await new Promise((resolve) => setTimeout(resolve, 1));
}`,
      );
      const replayer = await script(
        'replayer.js',
        `const s = await spool.FileSpool.open(dir, ${options});
let stop = false;
process.stdin.on('data', () => (stop = true));
while (!stop) {
  await s.replay(async (records) => records.forEach((r) => console.log('replayed ' + r.entityId)), 100, (r) => console.log('rejected ' + r.reason));
  console.log('replay done');
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await s.close();
process.exit(0);`,
      );

      const first = run(appender, dir);
      await until(() => first.words('acked').length >= 50, 'the first process to append');
      const second = run(replayer, dir);
      // The second replays many times (each replay ends and restarts) while the first goes on appending.
      const before = first.words('acked').length;
      // Not before the second has finished several replays: until then, nothing replayed proves nothing.
      await until(
        () => second.words('replay').length >= 5 && first.words('acked').length >= before + 300,
        'several replays beside more appends',
      );
      expect(second.words('replayed')).toEqual([]);

      first.child.kill('SIGKILL');
      await first.exited;
      const acked = first.words('acked');
      await until(
        () => acked.every((id) => second.words('replayed').includes(id)),
        'the second to adopt and replay what the first acknowledged',
      );
      second.child.stdin!.end('stop\n');
      await second.exited;

      expect(second.words('rejected').filter((reason) => reason !== 'torn_line')).toEqual([]);
      expect(new Set(second.words('replayed')).size).toBe(second.words('replayed').length);
      expect(await replayAll(dir)).toMatchObject({ entries: 0, inserted: [] });
    });
  });
});
