import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { type Construct } from 'constructs';
import { AUDIT_EVENTS } from '../../src/audit/sinks/audit-event';

/** Where the stack is deployed; decides the log retention. */
export type AuditEnvironment = 'nonprod' | 'prod';

/** The log group the example app's stderr is shipped to. */
export const DEFAULT_LOG_GROUP_NAME = '/aws/lightsail/usmax-nda-server';

/** CloudWatch namespace of the audit metrics. */
export const AUDIT_METRIC_NAMESPACE = 'AuditLog';

/**
 * The stderr events counted as metrics, by metric name. Each becomes a metric filter on `$.event`.
 *
 * @example
 * AUDIT_METRICS.DbWriteFailed; // 'audit.db_write_failed'
 */
export const AUDIT_METRICS = {
  DbWriteFailed: AUDIT_EVENTS.dbWriteFailed,
  Dropped: AUDIT_EVENTS.dropped,
  Evicted: AUDIT_EVENTS.evicted,
  FlushFailed: AUDIT_EVENTS.flushFailed,
  Quarantined: AUDIT_EVENTS.quarantined,
  SealFailed: AUDIT_EVENTS.sealFailed,
  ChainBroken: AUDIT_EVENTS.chainBroken,
  DiffFailed: AUDIT_EVENTS.diffFailed,
  Forged: AUDIT_EVENTS.forged,
} as const;

/** Name of one audit metric. */
export type AuditMetricName = keyof typeof AUDIT_METRICS;

const RETENTION: Record<AuditEnvironment, logs.RetentionDays> = {
  nonprod: logs.RetentionDays.ONE_WEEK,
  prod: logs.RetentionDays.ONE_MONTH,
};

const RUNBOOK = 'Runbook: docs/RUNBOOK.md';

/**
 * Props of {@link AuditObservabilityStack}.
 *
 * @example
 * const props: AuditObservabilityStackProps = { environment: 'prod', alarmEmail: 'ops@example.com' };
 */
export interface AuditObservabilityStackProps extends StackProps {
  readonly environment: AuditEnvironment;
  /** Defaults to {@link DEFAULT_LOG_GROUP_NAME}. */
  readonly logGroupName?: string;
  /** Subscribed to the alarm topic when given. */
  readonly alarmEmail?: string;
}

/**
 * Operator-facing observability of the audit module: the application log group, a metric per
 * failure event, alarms on audit-DB write failures, on dropped, evicted or quarantined entries, on
 * entity diffs not captured, on repeated sealing failures, on a cut seal chain and on any forged row (integrity on), and the SNS
 * topic of the operations team that receives both the alarm and the OK transitions.
 *
 * @example
 * new AuditObservabilityStack(app, 'AuditObservability-prod', { environment: 'prod' });
 */
export class AuditObservabilityStack extends Stack {
  readonly logGroup: logs.LogGroup;
  readonly alarmTopic: sns.Topic;
  readonly metricFilters: Record<AuditMetricName, logs.MetricFilter>;

  constructor(scope: Construct, id: string, props: AuditObservabilityStackProps) {
    super(scope, id, props);
    this.logGroup = new logs.LogGroup(this, 'AppLogGroup', {
      logGroupName: props.logGroupName ?? DEFAULT_LOG_GROUP_NAME,
      retention: RETENTION[props.environment],
    });

    this.metricFilters = {} as Record<AuditMetricName, logs.MetricFilter>;
    for (const [metricName, event] of Object.entries(AUDIT_METRICS)) {
      this.metricFilters[metricName as AuditMetricName] = this.logGroup.addMetricFilter(`${metricName}Filter`, {
        filterPattern: logs.FilterPattern.stringValue('$.event', '=', event),
        metricNamespace: AUDIT_METRIC_NAMESPACE,
        metricName,
        metricValue: '1',
        defaultValue: 0,
      });
    }

    this.alarmTopic = new sns.Topic(this, 'OperationsTopic', {
      displayName: `Audit log alarms (${props.environment})`,
    });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));

    this.alarm('DbWriteFailedAlarm', 'DbWriteFailed', {
      alarmName: `audit-db-write-failed-${props.environment}`,
      alarmDescription: `More than 10 failed audit-DB writes in 5 minutes: the audit DB is down or refusing writes. ${RUNBOOK}`,
      threshold: 10,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    this.alarm('DroppedAlarm', 'Dropped', {
      alarmName: `audit-entries-dropped-${props.environment}`,
      alarmDescription: `Audit entries were dropped: they are in neither the DB nor the ring buffer. ${RUNBOOK}`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    // The module counts an eviction as dropped but writes `audit.evicted`, not `audit.dropped`.
    this.alarm('EvictedAlarm', 'Evicted', {
      alarmName: `audit-entries-evicted-${props.environment}`,
      alarmDescription: `The ring buffer is full and evicts entries: they are not in the DB; replay them from their audit.buffered lines. ${RUNBOOK}`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.alarm('QuarantinedAlarm', 'Quarantined', {
      alarmName: `audit-entries-quarantined-${props.environment}`,
      alarmDescription: `The audit DB refused entries for their content: they are quarantined, not in the DB; fix the cause and replay them. ${RUNBOOK}`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });

    this.alarm('DiffFailedAlarm', 'DiffFailed', {
      alarmName: `audit-diffs-failed-${props.environment}`,
      alarmDescription: `Entity changes could not be captured as before/after diffs: the writes and their audit rows went ahead without them. ${RUNBOOK}`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });

    // Integrity on: the sealer retries by itself, so one failure is noise; three in 15 minutes
    // (the sealer backs off to a minute) mean the trail is not being sealed.
    this.alarm('SealFailedAlarm', 'SealFailed', {
      alarmName: `audit-sealing-failed-${props.environment}`,
      alarmDescription: `The audit sealer keeps failing: new audit rows are not sealed (tamper evidence lags). See docs/INTEGRITY.md. ${RUNBOOK}`,
      threshold: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      periodMinutes: 15,
    });

    // One line is enough: the sealer writes it once per start, and seals nothing more until an operator acts.
    this.alarm('ChainBrokenAlarm', 'ChainBroken', {
      alarmName: `audit-chain-broken-${props.environment}`,
      alarmDescription: `The seals in the audit DB no longer continue the ones the sealer made: seals were deleted or replaced, and the sealer seals nothing more. See docs/INTEGRITY.md. ${RUNBOOK}`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    // Integrity with entry keys: one forged row is already an incident (someone wrote to the trail past the module).
    this.alarm('ForgedAlarm', 'Forged', {
      alarmName: `audit-rows-forged-${props.environment}`,
      alarmDescription: `A row in audit_log did not pass through the module (its entry code fails): it was not sealed. Someone holding the database's credentials wrote it. See docs/INTEGRITY.md. ${RUNBOOK}`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });

    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
    new CfnOutput(this, 'LogGroupName', { value: this.logGroup.logGroupName });
  }

  private alarm(
    id: string,
    metricName: AuditMetricName,
    {
      periodMinutes = 5,
      ...props
    }: Pick<cloudwatch.AlarmProps, 'alarmName' | 'alarmDescription' | 'threshold' | 'comparisonOperator'> & {
      periodMinutes?: number;
    },
  ): cloudwatch.Alarm {
    const metric = this.metricFilters[metricName].metric({
      statistic: 'Sum',
      period: Duration.minutes(periodMinutes),
    });
    const alarm = metric.createAlarm(this, id, {
      ...props,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const action = new SnsAction(this.alarmTopic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    return alarm;
  }
}
