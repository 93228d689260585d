import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../src/embedded-database';
import { embeddedPostgresEntry } from '../src/embedded-postgres-cache';
import { runFixtureSuite } from './support/fixture-suite';
import { alive, binariesRoot, removeLeftover, sweepLeftovers } from './support/leftovers';
import { sleep, TestPostgres } from './support/postgres';

const root = join(__dirname, '..');
const helperScript = join(__dirname, 'support/postgres-server.mjs');

/** A suite as the e2e suites are written, except that its beforeAll fails after a fault, and no afterAll cleans up. */
const failingSuite = `
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leftoverName } from '${root}/test/support/leftovers';
import { TestPostgres } from '${root}/test/support/postgres';

beforeAll(async () => {
  const pg = await TestPostgres.start();
  await pg.kill();
  const build = join(tmpdir(), leftoverName('audit-build'));
  mkdirSync(build);
  writeFileSync(process.env.REPORT as string, JSON.stringify({ cluster: pg.dir, build }));
  throw new Error('beforeAll fails');
});

it('never runs', () => {});
`;

/**
 * A stand-in for a jest worker: a process that starts a cluster through the harness's helper in a
 * `/tmp/audit-test-pg-<run>-<pid>-…` directory and reports where, then just lives on.
 */
const parentScript = `
const { fork } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const [helperScript, entry, port, watchedRun] = process.argv.slice(1);
const run = Number(watchedRun) || process.pid;
const dir = '/tmp/audit-test-pg-' + run + '-' + process.pid + '-' + randomBytes(4).toString('hex');
const settings = { dir, port: Number(port), password: 'pw', durable: false, entry, run };
const helper = fork(helperScript, [JSON.stringify(settings)], { stdio: 'ignore' });
let next = 0;
const call = (op) => new Promise((resolve, reject) => {
  const id = next++;
  helper.on('message', (m) => m.id === id && (m.ok ? resolve() : reject(new Error(m.error))));
  helper.send({ id, op });
});
setInterval(() => {}, 1000);
helper.once('message', () => call('initialise').then(() => call('start')).then(() => console.log(JSON.stringify({ dir, helper: helper.pid }))));
`;

interface Cluster {
  parent: ChildProcess;
  dir: string;
  helper: number;
  port: number;
  postmaster: number;
}

/**
 * Starts a cluster through a stand-in parent on a free port. Another suite's cluster may take that
 * port between the probe and PostgreSQL's bind; a start that fails is tried again on a new port,
 * since what these tests check is the cleanup, not the start.
 */
async function startThroughParent(options: { watchedRun?: number } = {}, attempts = 3): Promise<Cluster> {
  const port = await freePort();
  const args = [
    '-e',
    parentScript,
    helperScript,
    await embeddedPostgresEntry({ cacheRoot: binariesRoot() }),
    String(port),
    String(options.watchedRun ?? ''),
  ];
  const parent = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string | undefined>((resolve) => {
    parent.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    parent.once('exit', () => resolve(undefined));
  });
  if (line === undefined) {
    if (attempts > 1) return startThroughParent(options, attempts - 1);
    throw new Error('the parent exited before its cluster started');
  }
  const { dir, helper } = JSON.parse(line) as { dir: string; helper: number };
  const postmaster = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return { parent, dir, helper, port, postmaster };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits up to `ms` for `gone` to hold. */
async function eventually(gone: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await gone()) return true;
    await sleep(100);
  }
  return gone();
}

const clusterGone = (cluster: Cluster) => async () =>
  !existsSync(cluster.dir) && !alive(cluster.postmaster) && !(await accepts(cluster.port));

describe('clusters of failed or killed test runs do not outlive them', () => {
  const started: Cluster[] = [];
  const start = async (options?: { watchedRun?: number }) => {
    started.push(await startThroughParent(options));
    return started[started.length - 1];
  };

  afterAll(() => {
    for (const cluster of started) {
      for (const pid of [cluster.parent.pid, cluster.helper, cluster.postmaster]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(cluster.dir, { recursive: true, force: true });
    }
  });

  it('a helper whose parent dies stops its server and removes its directory', async () => {
    const cluster = await start();
    expect(await accepts(cluster.port)).toBe(true);
    cluster.parent.kill('SIGKILL');
    expect(await eventually(clusterGone(cluster), 8000)).toBe(true);
  }, 30_000);

  it('it does so at once when its postmaster had been killed already', async () => {
    const cluster = await start();
    process.kill(cluster.postmaster, 'SIGKILL');
    cluster.parent.kill('SIGKILL');
    expect(await eventually(clusterGone(cluster), 2000)).toBe(true);
  }, 30_000);

  it('a helper whose test run is killed (its worker lingering on) removes its cluster', async () => {
    const run = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    const cluster = await start({ watchedRun: run.pid });
    expect(await accepts(cluster.port)).toBe(true);
    run.kill('SIGKILL');
    expect(await eventually(clusterGone(cluster), 5000)).toBe(true);
    expect(alive(cluster.parent.pid as number)).toBe(true);
  }, 30_000);

  it('a run killed outright (helper too): the next sweep kills its postmaster and removes its directory', async () => {
    const cluster = await start();
    process.kill(cluster.helper, 'SIGKILL');
    cluster.parent.kill('SIGKILL');
    await sleep(300);
    expect(existsSync(cluster.dir) && (await accepts(cluster.port))).toBe(true);

    expect(sweepLeftovers()).toContain(cluster.dir);
    expect(await eventually(clusterGone(cluster), 3000)).toBe(true);
  }, 30_000);

  it('a harness whose helper died fails at once, and stop() leaves neither directory nor server', async () => {
    const pg = await TestPostgres.start();
    const postmaster = pg.postmasterPid() as number;
    const helper = Number(readFileSync(`/proc/${postmaster}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
    process.kill(helper, 'SIGKILL');
    const before = performance.now();
    await expect(pg.restart()).rejects.toThrow(/PostgreSQL helper exited \(SIGKILL\)/);
    expect(performance.now() - before).toBeLessThan(2000);
    await pg.stop();
    expect(existsSync(pg.dir)).toBe(false);
    expect(await eventually(() => !alive(postmaster), 2000)).toBe(true);
  }, 30_000);

  it('a jest run whose suite fails in beforeAll leaves neither its cluster nor its build behind', () => {
    const fixtures = mkdtempSync('/tmp/audit-fixture-');
    try {
      const report = join(fixtures, 'report.json');
      const run = runFixtureSuite(fixtures, failingSuite, { env: { REPORT: report } });
      expect(run.stderr).toContain('beforeAll fails');
      const { cluster, build } = JSON.parse(readFileSync(report, 'utf8')) as { cluster: string; build: string };
      expect([existsSync(cluster), existsSync(build)]).toEqual([false, false]);
    } finally {
      rmSync(fixtures, { recursive: true, force: true });
    }
  }, 60_000);

  it('removing a cluster whose postmaster was killed also ends the backends still writing in it', async () => {
    const pg = await TestPostgres.start();
    const writer = await pg.connect();
    writer.on('error', () => {});
    try {
      const backend = (await writer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // A long write: the backend notices the postmaster's death only once it ends.
      void writer
        .query('CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 20) AS s FROM generate_series(1, 50000000) g')
        .catch(() => {});
      await eventually(
        async () =>
          (await pg.query("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CREATE TABLE filler%'")).length > 0,
        10_000,
      );
      process.kill(pg.postmasterPid() as number, 'SIGKILL');
      await sleep(100);

      removeLeftover(pg.dir);
      expect([existsSync(pg.dir), alive(backend)]).toEqual([false, false]);
    } finally {
      await pg.stop();
    }
  }, 60_000);

  it("the sweep removes this run's directories and dead runs', never a live run's", () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number;
    const mine = `/tmp/audit-build-999999999-${process.pid}-aaaaaa`;
    const deadRun = `/tmp/audit-test-pg-${dead}-${dead}-bbbbbbbb`;
    const liveRun = `/tmp/audit-test-pg-${process.pid}-${process.pid}-cccccccc`;
    const deadOldStyle = `/tmp/audit-test-pg-${dead}-dddddddd`;
    const liveOldStyle = `/tmp/audit-test-pg-${process.pid}-eeeeeeee`;
    const dirs = [mine, deadRun, liveRun, deadOldStyle, liveOldStyle];
    for (const dir of dirs) mkdirSync(dir);
    try {
      const removed = sweepLeftovers('999999999');
      expect(removed).toEqual(expect.arrayContaining([mine, deadRun, deadOldStyle]));
      expect(dirs.map(existsSync)).toEqual([false, false, true, false, true]);
    } finally {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });
});
