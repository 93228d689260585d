import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { freePort } from '../src/embedded-database';

const running = new Set<ChildProcess>();

/** What `GET /health` says of the audit database (`details.audit_db`). */
export interface AuditHealth {
  state: string;
  pending?: number;
  buffered: number;
  dropped: number;
  spooled?: number;
}

/**
 * The example app running as a child process on a free loopback port. Its stderr event lines
 * (`{"event":"audit.spooled",…}`) are passed to `onEvent` as they arrive, with the line.
 *
 * @example
 * const app = await ChaosApp.start('sync', 'dist/src/main.js', { AUDIT_MODE: 'sync', … });
 * try { … } finally { await app.stop(); }
 */
export class ChaosApp {
  private tail = '';

  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly exited: Promise<void>,
  ) {}

  /** Spawns `node main` with `env` and resolves once it answers `GET /health` (200 or 503). */
  static async start(
    name: string,
    main: string,
    env: NodeJS.ProcessEnv,
    onEvent: (event: string, line: string) => void,
  ): Promise<ChaosApp> {
    const port = await freePort();
    const child = spawn(process.execPath, [main], { env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exited.then(() => running.delete(child));
    const app = new ChaosApp(name, port, child, exited);
    child.stdout?.on('data', (chunk: Buffer) => app.keep(chunk.toString()));
    createInterface({ input: child.stderr as NonNullable<typeof child.stderr> }).on('line', (line) => {
      const event = /^\{"timestamp":"[^"]*","level":"\w+","event":"([\w.]+)"/.exec(line)?.[1];
      if (event) onEvent(event, line);
      else app.keep(`${line}\n`);
    });
    const deadline = Date.now() + 30_000;
    while ((await app.health()) === undefined) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the ${name} app did not start: ${app.tail.slice(-1500)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return app;
  }

  /** The audit database as the app sees it, or `undefined` when the app does not answer. */
  health(): Promise<AuditHealth | undefined> {
    return new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: this.port, path: '/health', timeout: 2000 }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => {
          try {
            resolve((JSON.parse(body) as { details: { audit_db: AuditHealth } }).details.audit_db);
          } catch {
            resolve(undefined);
          }
        });
      });
      req.on('error', () => resolve(undefined));
      req.on('timeout', () => req.destroy());
      req.end();
    });
  }

  /** Resident memory of the app process in bytes (`VmRSS`), or `undefined` once it has exited. */
  async rssBytes(): Promise<number | undefined> {
    try {
      const status = await readFile(`/proc/${this.child.pid}/status`, 'utf8');
      const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
      return kib === undefined ? undefined : Number(kib) * 1024;
    } catch {
      return undefined;
    }
  }

  /** SIGKILL: no shutdown hook runs, whatever was in memory is gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (graceful shutdown), SIGKILL after 10 s; resolves `false` when it took the SIGKILL. */
  async stop(): Promise<boolean> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return true;
    this.child.kill('SIGTERM');
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      this.child.kill('SIGKILL');
    }, 10_000);
    await this.exited;
    clearTimeout(timer);
    return !killed;
  }

  /** The end of what the app printed that was not an audit event line. */
  get output(): string {
    return this.tail;
  }

  private keep(text: string): void {
    this.tail = (this.tail + text).slice(-4000);
  }
}

/**
 * SIGKILLs every app process still running (for `exit` and signal handlers).
 *
 * @example
 * process.once('SIGINT', () => killAllApps());
 */
export function killAllApps(): void {
  for (const child of running) child.kill('SIGKILL');
}

/**
 * Each app's `/health` (audit_db details), by app name.
 *
 * @example
 * await healthOf([sync, async]); // { sync: { state: 'up', buffered: 0, … }, async: undefined }
 */
export async function healthOf(apps: ChaosApp[]): Promise<Record<string, AuditHealth | undefined>> {
  return Object.fromEntries(await Promise.all(apps.map(async (app) => [app.name, await app.health()] as const)));
}

/**
 * `up`, nothing in the ring, nothing in the spool.
 *
 * @example
 * isSettled(await app.health()); // true once everything reached the table
 */
export function isSettled(health: AuditHealth | undefined): boolean {
  return health?.state === 'up' && health.buffered === 0 && (health.spooled ?? 0) === 0;
}

/**
 * Polls each app's `/health` until all are settled or `timeoutMs` passes; returns the last answers.
 *
 * @example
 * const health = await settle([sync, async], 30_000);
 */
export async function settle(apps: ChaosApp[], timeoutMs: number): Promise<Record<string, AuditHealth | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const health = await healthOf(apps);
    if (Object.values(health).every(isSettled) || Date.now() > deadline) return health;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The running apps. `target` is where the load goes: one app, or the `fleet` in turn. */
export interface ChaosApps {
  sync: ChaosApp;
  async: ChaosApp;
  /** Sync-mode instances sharing the audit database, each with a spool subdirectory of its own. */
  fleet: ChaosApp[];
  target: 'sync' | 'async' | 'fleet';
}

/**
 * Every app running now.
 *
 * @example
 * await settle(liveApps(context.apps), 3000);
 */
export function liveApps(apps: ChaosApps): ChaosApp[] {
  return [apps.sync, apps.async, ...apps.fleet];
}

/**
 * The app request number `n` goes to: the target app, or the fleet's instances in turn.
 *
 * @example
 * const load = new Load(() => targetOf(context.apps, sent++), 8);
 */
export function targetOf(apps: ChaosApps, n: number): ChaosApp {
  if (apps.target !== 'fleet' || apps.fleet.length === 0) return apps[apps.target === 'fleet' ? 'sync' : apps.target];
  return apps.fleet[n % apps.fleet.length];
}
