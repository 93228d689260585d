import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { leftoverName, runId } from './leftovers';

const root = resolve(__dirname, '../..');

/** The build of the project that the suites of one run share; they only read it. */
export interface Build {
  /** `dist/` of this build: `src/main.js`, `src/audit/replay/replay.cli.js`, … */
  dir: string;
  /** Environment for `node <dir>/…`: modules resolve from the project's node_modules. */
  env: NodeJS.ProcessEnv;
}

/**
 * This run's build of `tsconfig.build.json` in a temporary directory, with the viewer's page beside
 * its controller: the first suite that asks compiles it (about 10 s on 2 cores), the later ones
 * find it. Each build is made in a directory of its own and renamed into place whole, so a suite
 * never reads a build in the making; two suites that ask at once each compile, and the second
 * rename finds the first build there. The run's global teardown removes it (suites never do: a
 * suite of the same run may still be reading it), as it removes a failed build left behind.
 */
export function buildProject(): Build {
  const env = { ...process.env, NODE_PATH: join(root, 'node_modules') };
  const shared = join(tmpdir(), `audit-build-${runId()}-${runId()}-shared`);
  if (existsSync(join(shared, 'src/main.js'))) return { dir: shared, env };
  const dir = join(tmpdir(), leftoverName('audit-build'));
  mkdirSync(dir, { mode: 0o700 });
  try {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', dir],
      { cwd: root, stdio: 'pipe' },
    );
    // The viewer's page is not compiled: it is served from beside the compiled controller.
    cpSync(join(root, 'src/audit/viewer/assets'), join(dir, 'src/audit/viewer/assets'), { recursive: true });
    renameSync(dir, shared);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    // Another suite's build took the place first: it is as good as this one.
    if (!existsSync(join(shared, 'src/main.js'))) throw error;
  }
  return { dir: shared, env };
}
