import { App } from 'aws-cdk-lib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A maker of CDK apps that synthesize into one temporary directory of the calling spec file,
 * removed after its tests. A bare `new App()` writes a fresh `cdk.out*` directory in the system
 * temp dir and leaves it there. Call it at the top level of a spec (it registers `afterAll`).
 *
 * @example
 * const newApp = tempApps();
 * const template = Template.fromStack(new AuditObservabilityStack(newApp(), 'Audit', { environment: 'prod' }));
 */
export function tempApps(): () => App {
  const root = mkdtempSync(join(tmpdir(), 'audit-infra-test-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let count = 0;
  return () => new App({ outdir: join(root, `cdk.out-${(count += 1)}`) });
}
