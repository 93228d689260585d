import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type SpoolAppendResult } from './audit-spool';
import { FileSpool } from './file-spool';
import { encodeSpoolLine } from './spool-line';

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
const lineBytes = Buffer.byteLength(encodeSpoolLine(record(1000)));

describe('FileSpool: one spool directory shared by several processes', () => {
  let work: string;
  let build: string;
  let filler: string;
  const children: ChildProcessWithoutNullStreams[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'spool-shared-'));
    build = join(work, 'build');
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const flags = ['--module', 'commonjs', '--target', 'ES2022', '--lib', 'ES2024', '--strict', '--skipLibCheck', '--types', 'node'];
    execFileSync(process.execPath, [tsc, ...flags, '--outDir', build, join(root, 'src/audit/spool/index.ts')], {
      cwd: root,
      stdio: 'pipe',
    });
    // Another process: opens the spool, says `ready`; at a line on stdin fills it until it refuses an
    // entry and says `full <why>`; closes it when stdin ends.
    filler = join(work, 'filler.js');
    await writeFile(
      filler,
      `const spool = require(${JSON.stringify(join(build, 'spool'))});
const { AuditEntryNormalizer } = require(${JSON.stringify(join(build, 'audit-entry'))});
const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const [dir, options, first] = [process.argv[2], JSON.parse(process.argv[3]), Number(process.argv[4])];
(async () => {
  const s = await spool.FileSpool.open(dir, options);
  process.stdin.on('end', () => void s.close().then(() => process.exit(0)));
  console.log('ready');
  await new Promise((go) => process.stdin.once('data', go));
  for (let n = first; n < first + 1000; n += 1) {
    const record = normalizer.normalize({ action: 'nda_created', entityId: 'nda-' + n, changes: { n, pad: 'x'.repeat(900) } }).record;
    const result = await s.append([record]);
    if (result.dropped.length > 0) return console.log('full ' + result.error);
  }
  console.log('never full');
})().catch((error) => { console.error(error); process.exit(3); });
`,
    );
  }, 60_000);
  afterEach(async () => {
    await Promise.all(
      children.splice(0).map(async (child) => {
        const exited = new Promise((done) => child.on('exit', done));
        child.stdin.end();
        if (child.exitCode === null && child.signalCode === null) await exited;
      }),
    );
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  /** Starts a filler on `dir`; `said(word)` resolves with the rest of the first line it prints starting so. */
  const start = (dir: string, options: object, first: number) => {
    const child = spawn(process.execPath, [filler, dir, JSON.stringify(options), String(first)], { env: childEnv });
    child.stderr.pipe(process.stderr);
    children.push(child);
    let out = '';
    child.stdout.on('data', (data: Buffer) => (out += data.toString()));
    const said = (word: string) =>
      new Promise<string>((done, fail) => {
        const check = () => {
          const line = out.split('\n').find((l) => l.startsWith(word));
          if (line !== undefined) done(line.slice(word.length).trim());
        };
        child.stdout.on('data', check);
        child.on('exit', (code) => fail(new Error(`a filler exited (${code}) before it said ${word}`)));
        check();
      });
    return { child, said };
  };
  const onDisk = async (dir: string) => {
    let bytes = 0;
    for (const name of await readdir(dir)) if (name.endsWith('.ndjson')) bytes += (await stat(join(dir, name))).size;
    return bytes;
  };

  it("keeps the directory within spoolMaxBytes in all: the second refuses as spool_full what the first's segments leave no room for", async () => {
    const dir = join(work, 'two');
    const other = start(dir, limits, 0);
    await other.said('ready');
    other.child.stdin.write('go\n');
    expect(await other.said('full')).toBe('spool_full');
    const theirs = await onDisk(dir);

    const spool = await FileSpool.open(dir, limits);
    let refusal: SpoolAppendResult | undefined;
    for (let n = 1000; n < 2000 && !refusal; n += 1) {
      const result = await spool.append([record(n)]);
      if (result.dropped.length > 0) refusal = result;
    }
    const own = spool.bytes;
    const total = await onDisk(dir);
    await spool.close();
    expect(theirs).toBeGreaterThan(limits.maxBytes - lineBytes);
    expect(refusal).toMatchObject({ kept: [], error: 'spool_full' });
    expect(total).toBe(theirs + own);
    expect(total).toBeLessThanOrEqual(limits.maxBytes);
  }, 60_000);

  it('three processes filling it at once pass spoolMaxBytes by at most one segment (plus one append) each but one', async () => {
    const dir = join(work, 'three');
    const options = { maxBytes: 64 * 1024, segmentBytes: 16 * 1024, leaseMs: 60_000 };
    const fillers = [0, 1, 2].map((i) => start(dir, options, i * 1000));
    await Promise.all(fillers.map((f) => f.said('ready')));
    fillers.forEach((f) => f.child.stdin.write('go\n'));
    expect(await Promise.all(fillers.map((f) => f.said('full')))).toEqual(['spool_full', 'spool_full', 'spool_full']);

    const total = await onDisk(dir);
    expect(total).toBeGreaterThan(options.maxBytes - lineBytes);
    expect(total).toBeLessThanOrEqual(options.maxBytes + 2 * (options.segmentBytes + lineBytes));
  }, 60_000);
});
