// @ts-check
import { createRequire } from 'node:module';
import { GROUPS } from './groups.mjs';

const name = process.env.MUTATE_GROUP ?? '';
const group = GROUPS[name];
if (!group) throw new Error(`MUTATE_GROUP must be one of ${Object.keys(GROUPS).join(', ')}, got "${name}"`);

// The project's jest configuration, narrowed to the group's specs; its global setup sweeps e2e leftovers, not needed here.
// eslint-disable-next-line @typescript-eslint/no-unused-vars
const { testRegex, globalSetup, globalTeardown, maxWorkers, workerIdleMemoryLimit, ...jest } = createRequire(import.meta.url)(
  '../jest.config.js',
);

// The TypeScript checker sets aside mutants that do not compile, but costs several times the tests'
// time per mutant on a busy machine: on with MUTATE_TYPECHECK=1. Without it such a mutant runs
// (ts-jest only transpiles) and is killed or listed as a survivor like any other.
const typecheck = process.env.MUTATE_TYPECHECK === '1';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: group.mutate,
  testRunner: 'jest',
  jest: {
    projectType: 'custom',
    // Only src/ is crawled: a smaller module map makes each of the many runs start faster.
    config: { ...jest, roots: ['<rootDir>/src'], testRegex: group.specs.map((spec) => `/${spec.replaceAll('.', '\\.')}$`) },
    enableFindRelatedTests: false,
  },
  checkers: typecheck ? ['typescript'] : [],
  // The module's own sources: the checker type-checks far less than the whole project (test/, infrastructure/).
  tsconfigFile: 'mutate/tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // The machine is shared: one test process at a time.
  concurrency: 1,
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 90, low: 85, break: null },
};
