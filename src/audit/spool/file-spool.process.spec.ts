import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type SpoolRejection } from './audit-spool';
import { FileSpool } from './file-spool';

const root = resolve(__dirname, '../../..');

// The spool as a separate process uses it: compiled, against the real disk and kernel limits.
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
    const run = spawnSync('bash', ['-c', 'ulimit -f 16; exec "$0" "$@"', process.execPath, child, dir], { encoding: 'utf8' });
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
});
