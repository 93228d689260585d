// PROMISE (docs/FAILURES.md, modes table, "sync without spoolDir"): "if the database does not
// take it within writeTimeoutMs, the response goes out once the entry is in the ring and its
// audit.buffered line (the full entry) is written to stderr: from there, as in async. Allowed for
// hosts without a writable disk; the stderr line shipped to CloudWatch is then the durable copy";
// and for async: "lost from memory if the process dies during an outage (the stderr lines remain
// for replay)". HELPER brief: stderr lines are "never lost when stderr is a slow ... pipe".
//
// BREAK: writeStderrLine() hands the line to process.stderr.write() and returns; when the pipe is
// full (the log driver reads behind), Node queues the line in the process's memory and the
// response goes out anyway. The process then dies (SIGKILL, an OOM kill, a container stop past
// its grace period): every queued line is gone, though each of those requests was answered 201.
//
// OBSERVED: with stderr a real pipe (a FIFO) that is read only after the kill, 80 NDAs created
// during an audit-database outage in sync mode without a spool, all answered 201: only the lines
// that fit in the 64 KiB pipe buffer reach the reader (16 here); the other 64 have no
// audit.buffered line anywhere: acknowledged mutations with no audit record at all
// (expected { acknowledged: 80, missing: 0 }, received { acknowledged: 80, missing: 64 }).
//
// SEVERITY: high (sync mode without a spool names the stderr line its durable copy; the loss is
// silent, no counter or line says so).
//
// FIX GUESS: in sync mode, let the request wait for the write's callback (the line handed to the
// kernel) before the response goes out, bounded by writeTimeoutMs; past it, say so (a counter on
// /health, a Sentry report), and document that a pipe read behind loses lines queued in memory at
// a kill; or write the line with fs.writeSync(2) where blocking is acceptable.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../src/embedded-database';
import { eventually } from './support/app';
import { type Build, buildProject } from './support/build';
import { leftoverDir } from './support/leftovers';
import { TestPostgres } from './support/postgres';

describe('sync mode without a spool: the audit.buffered line of an acknowledged request behind a slow stderr reader', () => {
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

  /** Everything the pipe holds now (the reader comes late: the log driver catching up). */
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

  it('has a line for every NDA answered 201 during the outage, after the app is killed', async () => {
    const fifo = join(dir, 'stderr.fifo');
    execFileSync('mkfifo', [fifo]);
    // Read-write and non-blocking on our side: the pipe exists, nobody reads it until the end.
    fifoFd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [join(build.dir, 'src/main.js')], {
      env: {
        ...build.env,
        PORT: String(port),
        DATABASE_URL: appDb.url(),
        AUDIT_DATABASE_URL: auditDb.url(),
        AUDIT_MODE: 'sync',
        AUDIT_WRITE_TIMEOUT_MS: '1000',
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

    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    const text = drain(fifoFd);
    const buffered = new Set<string>();
    for (const line of text.split('\n')) {
      if (!line.includes('"audit.buffered"')) continue;
      for (const id of acknowledged) if (line.includes(id)) buffered.add(id);
    }
    const missing = acknowledged.filter((id) => !buffered.has(id));
    expect({ acknowledged: acknowledged.length, missing: missing.length }).toEqual({ acknowledged: 80, missing: 0 });
  }, 120_000);
});
