import { App } from 'aws-cdk-lib';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leftoverName } from '../../test/support/leftovers';

/**
 * A maker of CDK apps that synthesize into one temporary directory of the calling spec file,
 * removed after its tests. A bare `new App()` writes a fresh `cdk.out*` directory in the system
 * temp dir and leaves it there. Call it at the top level of a spec (it registers `afterAll`). The
 * directory is named for the test run, so that the run's global teardown removes it when the
 * afterAll does not run: a run filtered by `-t` collects the spec (synthesizing) but runs none of it.
 *
 * @example
 * const newApp = tempApps();
 * const template = Template.fromStack(new AuditObservabilityStack(newApp(), 'Audit', { environment: 'prod' }));
 */
export function tempApps(): () => App {
  const root = join(tmpdir(), leftoverName('audit-infra'));
  mkdirSync(root, { mode: 0o700 });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let count = 0;
  return () => new App({ outdir: join(root, `cdk.out-${(count += 1)}`) });
}
