// jest's test runner, in two rounds. The unit specs (src/, infrastructure/) share their workers:
// a worker's start-up (Node, jest's runtime, the transformer) costs about a second, more than most
// of these specs take. The suites of test/ then run each in a fresh worker (workerIdleMemoryLimit
// in jest.config.js): the Sentry SDK patches Node's module loader for the whole process, and a
// second suite initialising it in the same worker inherits the first one's torn-down hooks; the
// example app and the servers a suite starts are gone with its worker, whatever the suite left.
const { default: TestRunner } = require('jest-runner');

const FRESH_WORKER = /^[\\/]test[\\/]/;

class TwoRoundTestRunner extends TestRunner {
  async runTests(tests, watcher, options) {
    if (options.serial) return super.runTests(tests, watcher, options);
    const config = this._globalConfig;
    const shared = tests.filter((test) => !FRESH_WORKER.test(test.path.slice(test.context.config.rootDir.length)));
    const fresh = tests.filter((test) => !shared.includes(test));
    if (shared.length > 0) {
      this._globalConfig = { ...config, workerIdleMemoryLimit: undefined };
      try {
        await super.runTests(shared, watcher, options);
      } finally {
        this._globalConfig = config;
      }
    }
    if (fresh.length > 0 && !watcher.isInterrupted()) await super.runTests(fresh, watcher, options);
  }
}

module.exports = TwoRoundTestRunner;
