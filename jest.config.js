/** One jest run for unit specs (beside the source), e2e suites (test/) and the CDK stack tests. */
module.exports = {
  testEnvironment: 'node',
  rootDir: '.',
  roots: ['<rootDir>/src', '<rootDir>/test', '<rootDir>/infrastructure'],
  testRegex: '\\.(spec|e2e-spec)\\.ts$',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  maxWorkers: 2,
  // Transforms and the module map are cached inside the checkout, so that a run leaves nothing in /tmp.
  cacheDirectory: '<rootDir>/node_modules/.cache/jest',
  // A fresh worker per suite of test/ (the unit specs share theirs, in a round of their own before
  // them: test/support/test-runner.js): the Sentry SDK patches Node's module loader for the whole
  // process, and a second suite initialising it in the same worker inherits the first one's torn-down hooks.
  workerIdleMemoryLimit: '1MB',
  runner: '<rootDir>/test/support/test-runner.js',
  testTimeout: 60000,
  // Names the run for its workers; removes the clusters and builds that failed suites or killed runs left in /tmp.
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
};
