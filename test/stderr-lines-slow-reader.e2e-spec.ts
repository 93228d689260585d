import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../src/embedded-database';
import { eventually } from './support/app';
import { type Build, buildProject } from './support/build';
import { leftoverDir } from './support/leftovers';
import { TestPostgres } from './support/postgres';

// docs/FAILURES.md, "A slow or stuck stderr": without a spool, the stderr lines are the copy of
// the entries the database did not take. stderr here is a real pipe (a FIFO) whose reader is
// behind: a log driver that reads late. Node queues what the full pipe does not take in the
// process's memory, where a kill loses it. In sync mode the response waits (at most
// writeTimeoutMs) until stderr has taken the entry's line, and an entry answered without that is
// counted (`stderrLate`); a graceful stop waits (at most writeTimeoutMs) until stderr has taken
// every line queued.
describe('without a spool: the stderr lines of acknowledged requests behind a slow stderr reader', () => {
  let build: Build;
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let dir: string;
  let fifoFd: number | undefined;
  let child: ChildProcess | undefined;
  let base = '';
  let output = '';

  beforeAll(async () => {
    [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    build = buildProject();
    dir = await leftoverDir('audit-crash');
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    if (fifoFd !== undefined) closeSync(fifoFd);
    await auditDb?.ensureRunning();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
    if (build) await rm(build.dir, { recursive: true, force: true });
  }, 30_000);

  /** Everything the pipe holds now. */
  const drain = (fd: number): string => {
    const chunks: Buffer[] = [];
    const buffer = Buffer.alloc(65536);
    for (;;) {
      try {
        const n = readSync(fd, buffer, 0, buffer.length, null);
        if (n <= 0) break;
        chunks.push(Buffer.from(buffer.subarray(0, n)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw error;
      }
    }
    return Buffer.concat(chunks).toString('utf8');
  };

  /** The NDA ids (`entityId`) of the whole lines in `text` (a line cut short by the kill names nothing). */
  const namedIds = (text: string): Set<string> => {
    const named = new Set<string>();
    for (const line of text.split('\n')) {
      try {
        const { entityId } = JSON.parse(line) as { entityId?: unknown };
        if (typeof entityId === 'string') named.add(entityId);
      } catch {
        // The last line, cut where the pipe was full.
      }
    }
    return named;
  };

  const auditHealth = async () =>
    (
      (await (await fetch(`${base}/health`, { headers: { connection: 'close' } })).json()) as {
        details: { audit_db: Record<string, unknown> };
      }
    ).details.audit_db;

  /**
   * Starts the app in `mode` without a spool, its stderr a pipe nobody reads yet; kills the audit
   * database and creates 80 NDAs, each answered 201: their ids.
   */
  async function outage(mode: 'sync' | 'async', writeTimeoutMs: number): Promise<string[]> {
    await auditDb.ensureRunning();
    const fifo = join(dir, `stderr-${mode}.fifo`);
    execFileSync('mkfifo', [fifo]);
    // Read-write and non-blocking on our side: the pipe exists, nobody reads it until later.
    if (fifoFd !== undefined) closeSync(fifoFd);
    fifoFd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [join(build.dir, 'src/main.js')], {
      env: {
        ...build.env,
        PORT: String(port),
        DATABASE_URL: appDb.url(),
        AUDIT_DATABASE_URL: auditDb.url(),
        AUDIT_MODE: mode,
        AUDIT_WRITE_TIMEOUT_MS: String(writeTimeoutMs),
        AUDIT_RETRY_BACKOFF_MS: '60000',
        AUDIT_RETRY_BACKOFF_MAX_MS: '60000',
        SENTRY_DSN: '',
      },
      stdio: ['ignore', 'pipe', fifoFd],
    });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually(
      async () => (await fetch(`${base}/health`)).status === 200,
      30_000,
      `the app to serve (output: ${output.slice(-2000)})`,
    );

    await auditDb.kill();
    const acknowledged: string[] = [];
    for (let n = 0; n < 80; n += 1) {
      const response = await fetch(`${base}/ndas`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', connection: 'close' },
        body: JSON.stringify({ title: `NDA ${n} ${'t'.repeat(480)}`, counterparty: `Hooli ${'c'.repeat(480)}` }),
      });
      expect(response.status).toBe(201);
      acknowledged.push(((await response.json()) as { id: string }).id);
    }
    return acknowledged;
  }

  it('sync mode, the reader stuck until a SIGKILL: every NDA answered 201 is on a whole stderr line, or counted in stderrLate', async () => {
    const acknowledged = await outage('sync', 1000);
    const { stderrLate, stderrQueuedBytes } = await auditHealth();

    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child?.kill('SIGKILL');
    await exited;

    const named = namedIds(drain(fifoFd as number));
    const missing = acknowledged.filter((id) => !named.has(id)).length;
    // The pipe took the first lines whole; the rest waited in memory, each answered counted.
    expect(missing).toBeGreaterThan(0);
    expect({ acknowledged: acknowledged.length, missing }).toEqual({ acknowledged: 80, missing: stderrLate });
    expect(stderrQueuedBytes).toBeGreaterThan(0);
  }, 120_000);

  it('async mode, a graceful stop (SIGTERM) while the reader is behind: a reader that catches up during the stop gets a line for every NDA answered 201', async () => {
    const acknowledged = await outage('async', 10_000);

    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child?.kill('SIGTERM');
    // The app has placed what it held (its shutdown lines are queued) once it stops listening.
    await eventually(
      async () => {
        try {
          await fetch(`${base}/health`, { headers: { connection: 'close' } });
          return false;
        } catch {
          return true;
        }
      },
      30_000,
      'the app to stop listening',
    );
    // Now the reader catches up, until the process has ended.
    let text = '';
    let ended = false;
    void exited.then(() => (ended = true));
    while (!ended) {
      text += drain(fifoFd as number);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    text += drain(fifoFd as number);

    const named = namedIds(text);
    expect({ acknowledged: acknowledged.length, missing: acknowledged.filter((id) => !named.has(id)).length }).toEqual({
      acknowledged: 80,
      missing: 0,
    });
  }, 120_000);
});
