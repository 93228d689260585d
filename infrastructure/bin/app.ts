import { App } from 'aws-cdk-lib';
import { type AuditEnvironment, AuditObservabilityStack } from '../lib/audit-observability-stack';

const ENVIRONMENTS: readonly AuditEnvironment[] = ['nonprod', 'prod'];

/**
 * A per-environment setting from `AUDIT_<ENV>_<KEY>`; empty counts as unset.
 *
 * @example
 * setting('prod', 'ALARM_EMAIL'); // process.env.AUDIT_PROD_ALARM_EMAIL
 */
export function setting(environment: AuditEnvironment, key: string): string | undefined {
  return process.env[`AUDIT_${environment.toUpperCase()}_${key}`] || undefined;
}

/**
 * Builds the CDK app: one {@link AuditObservabilityStack} per environment. Each environment goes to
 * its own account, or sets its own log group name, since both default to the same name.
 * Settings: `AUDIT_NONPROD_LOG_GROUP_NAME`, `AUDIT_NONPROD_ALARM_EMAIL`, and the `PROD` pair.
 *
 * @example
 * buildApp(new App({ outdir: 'infrastructure/cdk.out' })).synth();
 */
export function buildApp(app: App): App {
  for (const environment of ENVIRONMENTS) {
    new AuditObservabilityStack(app, `AuditObservability-${environment}`, {
      environment,
      logGroupName: setting(environment, 'LOG_GROUP_NAME'),
      alarmEmail: setting(environment, 'ALARM_EMAIL'),
      description: `Audit log observability (${environment}): metric filters, alarms, operations topic`,
    });
  }
  return app;
}

if (require.main === module) buildApp(new App()).synth();
