import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { leftoverName } from './leftovers';

const root = resolve(__dirname, '../..');

/** A private build of the project, so suites running side by side never write the same files. */
export interface Build {
  /** `dist/` of this build: `src/main.js`, `src/audit/replay/replay.cli.js`, … */
  dir: string;
  /** Environment for `node <dir>/…`: modules resolve from the project's node_modules. */
  env: NodeJS.ProcessEnv;
}

/**
 * Compiles `tsconfig.build.json` into a temporary directory (about 10 s on 2 cores), with the
 * viewer's page beside its controller. A failed
 * build leaves nothing behind; a suite that dies before removing a good one leaves it to the
 * global teardown.
 */
export function buildProject(): Build {
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
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return { dir, env: { ...process.env, NODE_PATH: join(root, 'node_modules') } };
}
