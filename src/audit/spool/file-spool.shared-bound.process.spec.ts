import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type SpoolAppendResult } from './audit-spool';
import { FileSpool } from './file-spool';

// `spoolMaxBytes` is the size of the spool directory, however many processes share it (a rolling
// deploy overlaps the old process and the new one on one directory): each counts the other's
// segments as well as its own. Here with real processes, compiled, on the real disk; the cases of a
// sharer gone, replaying or growing: file-spool.shared-bound.spec.ts.

const root = resolve(__dirname, '../../..');
const childEnv = { ...process.env, NODE_PATH: join(root, 'node_modules') };
const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord =>
  normalizer.normalize({ action: 'nda_created', entityId: `nda-${n}`, changes: { n, pad: 'x'.repeat(900) } }).record;
const limits = { maxBytes: 64 * 1024, segmentBytes: 64 * 1024, leaseMs: 60_000 };

describe('FileSpool: one spool directory shared by two processes', () => {
  let work: string;
  let build: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'spool-shared-'));
    build = join(work, 'build');
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const flags = ['--module', 'commonjs', '--target', 'ES2022', '--lib', 'ES2024', '--strict', '--skipLibCheck', '--types', 'node'];
    execFileSync(process.execPath, [tsc, ...flags, '--outDir', build, join(root, 'src/audit/spool/index.ts')], {
      cwd: root,
      stdio: 'pipe',
    });
  }, 60_000);
  afterAll(() => rm(work, { recursive: true, force: true }));

  it("keeps the directory within spoolMaxBytes in all: the second refuses as spool_full what the first's segments leave no room for", async () => {
    const dir = join(work, 'shared');
    const path = join(work, 'filler.js');
    // The other process: fills its spool until it refuses an entry, says so, and holds on until told to close.
    await writeFile(
      path,
      `const spool = require(${JSON.stringify(join(build, 'spool'))});
const { AuditEntryNormalizer } = require(${JSON.stringify(join(build, 'audit-entry'))});
const normalizer = new AuditEntryNormalizer([], 64 * 1024);
(async () => {
  const s = await spool.FileSpool.open(process.argv[2], ${JSON.stringify(limits)});
  for (let n = 0; n < 1000; n += 1) {
    const record = normalizer.normalize({ action: 'nda_created', entityId: 'nda-' + n, changes: { n, pad: 'x'.repeat(900) } }).record;
    if ((await s.append([record])).dropped.length > 0) break;
  }
  console.log('full');
  process.stdin.resume();
  process.stdin.on('end', () => void s.close().then(() => process.exit(0)));
})().catch((error) => { console.error(error); process.exit(3); });
`,
    );
    const child = spawn(process.execPath, [path, dir], { stdio: ['pipe', 'pipe', 'inherit'], env: childEnv });
    const exited = new Promise<void>((done) => child.on('exit', () => done()));
    try {
      await new Promise<void>((done, fail) => {
        child.stdout.on('data', (data: Buffer) => data.toString().includes('full') && done());
        child.on('exit', (code) => fail(new Error(`the other process exited (${code})`)));
      });
      let theirs = 0;
      for (const name of await readdir(dir)) if (name.endsWith('.ndjson')) theirs += (await stat(join(dir, name))).size;
      const spool = await FileSpool.open(dir, limits);
      let refusal: SpoolAppendResult | undefined;
      for (let n = 1000; n < 2000 && !refusal; n += 1) {
        const result = await spool.append([record(n)]);
        if (result.dropped.length > 0) refusal = result;
      }
      let onDisk = 0;
      for (const name of await readdir(dir)) if (name.endsWith('.ndjson')) onDisk += (await stat(join(dir, name))).size;
      const own = spool.bytes;
      await spool.close();
      expect(theirs).toBeGreaterThan(limits.maxBytes - 2 * 1024);
      expect(refusal).toMatchObject({ kept: [], error: 'spool_full' });
      expect(onDisk).toBe(theirs + own);
      expect(onDisk).toBeLessThanOrEqual(limits.maxBytes);
    } finally {
      child.stdin.end();
      await exited;
    }
  }, 60_000);
});
