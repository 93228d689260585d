import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { freePort } from '../../src/embedded-database';
import { embeddedPostgresEntry } from '../../src/embedded-postgres-cache';
import { binariesRoot, CLUSTER_ROOT, leftoverName, removeLeftover, runId, testRunId } from './leftovers';

type Op = 'initialise' | 'start' | 'stop' | 'createDatabase';

/**
 * A real PostgreSQL server for one test suite (from `embedded-postgres`, run in a helper process
 * because that package is ESM-only), with the faults the suites need: kill the postmaster,
 * start it again, and SQL from other sessions.
 */
export class TestPostgres {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  private stderr = '';
  private exited: Error | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
    readonly port: number,
    readonly password: string,
  ) {
    child.on('message', (message: { id?: number; ok?: boolean; error?: string }) => {
      const waiter = message.id === undefined ? undefined : this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id as number);
      if (message.ok) waiter.resolve();
      else waiter.reject(new Error(message.error));
    });
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    // A helper that dies fails what waits on it at once, with its last words, instead of a hook timeout.
    child.once('exit', (code, signal) => {
      this.exited = new Error(`the PostgreSQL helper exited (${signal ?? `code ${code}`}): ${this.stderr.trim() || 'no output'}`);
      for (const waiter of this.waiting.values()) waiter.reject(this.exited);
      this.waiting.clear();
    });
  }

  /**
   * `durable: true` keeps PostgreSQL's own fsync settings (for benchmarks); the default skips the
   * flushes to disk, which a process kill does not need (commits survive it either way).
   * `entry` and `cacheRoot` locate `embedded-postgres` as {@link embeddedPostgresEntry} does (tests
   * of a private checkout); by default a mirror of the binaries goes to this run's {@link binariesRoot}. When the server does not start, the helper and its directory are gone.
   */
  static async start(options: { durable?: boolean; entry?: string; cacheRoot?: string } = {}): Promise<TestPostgres> {
    const entry = await embeddedPostgresEntry({ entry: options.entry, cacheRoot: options.cacheRoot ?? binariesRoot() });
    const dir = join(CLUSTER_ROOT, leftoverName('audit-test-pg'));
    const port = await freePort();
    const password = `pw-${randomBytes(6).toString('hex')}`;
    // In a jest run (not a benchmark's), a cluster of the project's binaries is a copy of the run's template.
    const template =
      testRunId() && !options.durable && !options.entry && !options.cacheRoot
        ? join(CLUSTER_ROOT, `audit-test-pg-${runId()}-${runId()}-template`)
        : undefined;
    const settings = JSON.stringify({ dir, port, password, durable: options.durable ?? false, entry, run: Number(runId()), template });
    const child = fork(serverScript(), [settings], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    const server = new TestPostgres(child, dir, port, password);
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('error', reject);
        child.once('exit', () => reject(server.exited));
      });
      await server.call('initialise');
      await server.call('start');
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  url(database = 'postgres', user = 'postgres', password = this.password): string {
    return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${this.port}/${database}`;
  }

  createDatabase(name: string): Promise<void> {
    return this.call('createDatabase', name);
  }

  /** SIGKILLs the postmaster: new connections are refused until {@link restart}. */
  async kill(): Promise<void> {
    process.kill(this.postmasterPid() as number, 'SIGKILL');
    while (await this.accepts()) await sleep(50);
    // Backends notice the postmaster's death and exit; a restart before that finds shared memory in use.
    await sleep(300);
  }

  restart(): Promise<void> {
    return this.call('start');
  }

  /** Restarts the server if a test left it killed. */
  async ensureRunning(): Promise<void> {
    if (!(await this.accepts())) await this.restart();
  }

  /** Runs one statement in a short-lived session. */
  async query<R extends object = Record<string, unknown>>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> {
    const client = await this.connect(database);
    try {
      return (await client.query(sql, params)).rows as R[];
    } finally {
      await client.end();
    }
  }

  /** A session held open by the caller (for locks and transactions); `end()` it. */
  async connect(database = 'postgres'): Promise<Client> {
    const client = new Client({ connectionString: this.url(database) });
    await client.connect();
    return client;
  }

  /** Stops the server and removes its directory, also after its helper died (the postmaster with it). */
  async stop(): Promise<void> {
    if (!this.exited) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      if (this.child.connected) this.child.disconnect();
      else this.child.kill('SIGKILL');
      await exited;
    }
    removeLeftover(this.dir);
  }

  /** The pid the postmaster recorded in the data directory, if there is one. */
  postmasterPid(): number | undefined {
    try {
      return Number(readFileSync(join(this.dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
  }

  private async accepts(): Promise<boolean> {
    try {
      await this.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  private call(op: Op, arg?: string): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(this.exited);
      this.waiting.set(id, { resolve, reject });
      this.child.send({ id, op, arg });
    });
  }
}

/** The helper script, found from here or, compiled into bench/ or chaos/, from an ancestor. */
function serverScript(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'test/support/postgres-server.mjs');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`test/support/postgres-server.mjs not found above ${__dirname}`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
