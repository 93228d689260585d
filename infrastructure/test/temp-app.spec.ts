import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { runFixtureSuite } from '../../test/support/fixture-suite';
import { leftoverOwner, runId } from '../../test/support/leftovers';
import { tempApps } from './temp-app';

const newApp = tempApps();

// A spec synthesizes while jest collects its tests, so a run that filters them all out (`-t`) makes
// the directory but never runs the afterAll that removes it: the run's global teardown must.
describe('tempApps', () => {
  it('synthesizes inside a directory of its own, named for this run so that its teardown removes it', () => {
    const root = dirname(newApp().outdir);
    expect(dirname(root)).toBe(tmpdir());
    expect(existsSync(root)).toBe(true);
    expect(leftoverOwner(basename(root))).toEqual({ run: runId(), pid: String(process.pid) });
  });
});

/** A stack suite as the CDK specs are written, except that its test fails once the stack is synthesized. */
const failingSuite = `
import { Template } from ${JSON.stringify(require.resolve('aws-cdk-lib/assertions'))};
import { AuditObservabilityStack } from ${JSON.stringify(join(__dirname, '../lib/audit-observability-stack'))};
import { tempApps } from ${JSON.stringify(join(__dirname, 'temp-app'))};

const newApp = tempApps();

it('synthesizes, then fails', () => {
  Template.fromStack(new AuditObservabilityStack(newApp(), 'Audit', { environment: 'prod' }));
  throw new Error('the stack test fails');
});
`;

// CDK writes each synthesized app to a fresh cdk.out* directory under TMPDIR unless told where;
// the stack specs synthesize into a directory of their own and remove it, whether they pass or fail.
describe('the CDK stack specs', () => {
  it('leave no cdk.out* or audit-infra-* directory in TMPDIR, also when a test fails', () => {
    const fixtures = mkdtempSync(join(tmpdir(), 'audit-fixture-'));
    const tmp = mkdtempSync(join(tmpdir(), 'audit-fixture-tmp-'));
    try {
      // Without the run's global sweep: the suite must clean up after itself.
      const run = runFixtureSuite(fixtures, failingSuite, { env: { TMPDIR: tmp }, bare: true });
      expect(run.stderr).toContain('the stack test fails');
      expect(readdirSync(tmp).filter((name) => /^(cdk\.out|audit-infra-)/.test(name))).toEqual([]);
    } finally {
      rmSync(fixtures, { recursive: true, force: true });
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);
});
