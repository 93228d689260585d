import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

/**
 * Runs one suite, `source`, written to `dir/fails.fixture.ts`, in a child jest with the project's
 * jest config, its global setup and teardown left out with `bare` (to see what a suite leaves
 * behind without the run's sweep). Returns the finished child (jest's report is on stderr).
 *
 * @example
 * const run = runFixtureSuite(dir, "it('fails', () => { throw new Error('no'); });", { env: { TMPDIR: tmp } });
 */
export function runFixtureSuite(
  dir: string,
  source: string,
  { env = {}, bare = false }: { env?: Record<string, string>; bare?: boolean } = {},
): SpawnSyncReturns<string> {
  writeFileSync(join(dir, 'fails.fixture.ts'), source);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { globalSetup, globalTeardown, ...base } = require('../../jest.config.js') as Record<string, unknown>;
  const config = {
    ...base,
    ...(bare ? {} : { globalSetup, globalTeardown }),
    rootDir: root,
    roots: [dir],
    testRegex: '\\.fixture\\.ts$',
    cacheDirectory: join(dir, 'cache'),
  };
  return spawnSync(process.execPath, [join(root, 'node_modules/jest/bin/jest.js'), '--config', JSON.stringify(config)], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}
