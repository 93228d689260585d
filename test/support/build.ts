import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { leftoverName, runId } from './leftovers';

const root = resolve(__dirname, '../..');

/** A private build of the project, so suites running side by side never write the same files. */
export interface Build {
  /** `dist/` of this build: `src/main.js`, `src/audit/replay/replay.cli.js`, … */
  dir: string;
  /** Environment for `node <dir>/…`: modules resolve from the project's node_modules. */
  env: NodeJS.ProcessEnv;
}

/**
 * A build of `tsconfig.build.json` in a temporary directory of the suite's own, with the viewer's
 * page beside its controller: hard links to the run's one compiled build, which the first suite
 * that asks compiles (about 10 s on 2 cores) and the later ones find. The run's build is compiled
 * in a directory of its own and renamed into place whole, so a suite never links a build in the
 * making; two suites that ask at once each compile, and the second rename finds the first build
 * there. A suite removes its own directory (the run's build stays: the global teardown removes
 * it); a suite that dies before removing its own leaves it to the global teardown too.
 */
export function buildProject(): Build {
  const shared = join(tmpdir(), `audit-build-${runId()}-${runId()}-shared`);
  if (!existsSync(join(shared, 'src/main.js'))) compileInto(shared);
  const dir = join(tmpdir(), leftoverName('audit-build'));
  execFileSync('cp', ['-al', shared, dir]);
  return { dir, env: { ...process.env, NODE_PATH: join(root, 'node_modules') } };
}

function compileInto(shared: string): void {
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
}
