import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { freePort } from '../../src/embedded-database';
import { EventCounter } from './event-lines';

const MAIN = join(__dirname, '../../src/main.js');
const running = new Set<ChildProcess>();

/** The example app (`src/main.ts`, compiled with the bench) running as a child process. */
export interface AppProcess {
  port: number;
  pid: number;
  /** The module's stderr lines, counted by event. */
  events: EventCounter;
  /** Resident set size of the app process, in MiB. */
  rssMb(): number;
  /** SIGTERM (graceful shutdown), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** The app exited before it listened; `output` is the tail of what it printed. */
export class AppRefusedError extends Error {
  constructor(readonly output: string) {
    super(`the example app exited at start-up: ${output}`);
  }
}

/**
 * Starts `node bench/dist/src/main.js` with `env` on a free port and resolves once it answers HTTP.
 *
 * @example
 * const app = await startApp({ DATABASE_URL: url, AUDIT_HTTP: 'false' });
 * try { … } finally { await app.stop(); }
 */
export async function startApp(env: Record<string, string>): Promise<AppProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH, NODE_ENV: 'production', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => running.delete(child));
  const events = new EventCounter();
  events.follow(child.stderr as NonNullable<typeof child.stderr>);
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-4000)));

  const ready = (async () => {
    for (;;) {
      if ((await answers(port)) !== false) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  if ((await Promise.race([ready, exited.then(() => false)])) !== true) {
    throw new AppRefusedError([stdout, ...events.other].join('\n').trim().slice(-600));
  }
  const pid = child.pid as number;
  return {
    port,
    pid,
    events,
    rssMb: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** SIGKILLs every app process still running (for `finally` and `exit` handlers). */
export function killAllApps(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Sends one `POST /ndas` and resolves with its latency in ms. */
export function postNda(port: number): Promise<number> {
  const started = performance.now();
  const body = JSON.stringify({ title: 'Probe NDA', counterparty: 'Probe Ltd' });
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/ndas', method: 'POST', headers: { 'content-type': 'application/json', 'x-user-id': 'probe' } },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 201 ? resolve(performance.now() - started) : reject(new Error(`POST /ndas: ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls `GET /health` until it answers 200 (the audit database is `up`), for at most `timeoutMs`. */
export async function waitHealthy(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await answers(port)) !== 200) {
    if (Date.now() > deadline) throw new Error(`GET /health on port ${port} not 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function answers(port: number): Promise<number | false> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? false);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
