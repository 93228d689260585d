import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../..');

/** A private build of the project, so suites running side by side never write the same files. */
export interface Build {
  /** `dist/` of this build: `src/main.js`, `src/audit/replay/replay.cli.js`, … */
  dir: string;
  /** Environment for `node <dir>/…`: modules resolve from the project's node_modules. */
  env: NodeJS.ProcessEnv;
}

/** Compiles `tsconfig.build.json` into a temporary directory (about 10 s on 2 cores). */
export function buildProject(): Build {
  const dir = mkdtempSync(join(tmpdir(), 'audit-build-'));
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', dir],
    { cwd: root, stdio: 'pipe' },
  );
  return { dir, env: { ...process.env, NODE_PATH: join(root, 'node_modules') } };
}
