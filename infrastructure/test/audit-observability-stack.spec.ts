import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../bin/app';
import { type AuditObservabilityStackProps, AuditObservabilityStack } from '../lib/audit-observability-stack';
import { tempApps } from './temp-app';

const newApp = tempApps();

const synth = (props: AuditObservabilityStackProps): Template => Template.fromStack(new AuditObservabilityStack(newApp(), 'Audit', props));

const topicRef = (template: Template): { Ref: string } => {
  const [logicalId] = Object.keys(template.findResources('AWS::SNS::Topic'));
  return { Ref: logicalId };
};

describe('AuditObservabilityStack', () => {
  const prod = synth({ environment: 'prod' });

  it.each([
    ['nonprod', 7],
    ['prod', 30],
  ] as const)('keeps %s logs %i days in the default log group', (environment, days) => {
    synth({ environment }).hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/lightsail/usmax-nda-server',
      RetentionInDays: days,
    });
  });

  it('uses the log group name it is given', () => {
    const template = synth({ environment: 'nonprod', logGroupName: '/custom/app' });
    template.resourceCountIs('AWS::Logs::LogGroup', 1);
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/custom/app' });
  });

  it.each([
    ['DbWriteFailed', 'audit.db_write_failed'],
    ['Dropped', 'audit.dropped'],
    ['Evicted', 'audit.evicted'],
    ['FlushFailed', 'audit.flush_failed'],
    ['Quarantined', 'audit.quarantined'],
    ['SealFailed', 'audit.seal_failed'],
    ['ChainBroken', 'audit.chain_broken'],
    ['DiffFailed', 'audit.diff_failed'],
    ['Forged', 'audit.forged'],
  ])('counts %s from the JSON event %s', (metricName, event) => {
    prod.hasResourceProperties('AWS::Logs::MetricFilter', {
      FilterPattern: `{ $.event = "${event}" }`,
      LogGroupName: { Ref: Match.stringLikeRegexp('^AppLogGroup') },
      MetricTransformations: [{ MetricNamespace: 'AuditLog', MetricName: metricName, MetricValue: '1', DefaultValue: 0 }],
    });
  });

  it('has exactly the nine metric filters and eight alarms', () => {
    prod.resourceCountIs('AWS::Logs::MetricFilter', 9);
    prod.resourceCountIs('AWS::CloudWatch::Alarm', 8);
  });

  it('alarms on the first audit.chain_broken line, to the operations topic, pointing to the integrity doc and the runbook', () => {
    prod.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AuditLog',
      MetricName: 'ChainBroken',
      AlarmName: 'audit-chain-broken-prod',
      AlarmDescription: Match.stringLikeRegexp('docs/INTEGRITY.md.*docs/RUNBOOK.md'),
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [topicRef(prod)],
      OKActions: [topicRef(prod)],
    });
  });

  it('alarms on any forged row in 5 minutes, to the operations topic, pointing to the integrity doc', () => {
    prod.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AuditLog',
      MetricName: 'Forged',
      AlarmName: 'audit-rows-forged-prod',
      AlarmDescription: Match.stringLikeRegexp('docs/INTEGRITY.md'),
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [topicRef(prod)],
      OKActions: [topicRef(prod)],
    });
  });

  it('alarms on 3 sealing failures in 15 minutes, to the operations topic, pointing to the integrity doc', () => {
    prod.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AuditLog',
      MetricName: 'SealFailed',
      AlarmName: 'audit-sealing-failed-prod',
      AlarmDescription: Match.stringLikeRegexp('docs/INTEGRITY.md'),
      Statistic: 'Sum',
      Period: 900,
      EvaluationPeriods: 1,
      Threshold: 3,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [topicRef(prod)],
      OKActions: [topicRef(prod)],
    });
  });

  it('alarms on more than 10 failed writes in 5 minutes, to the operations topic', () => {
    prod.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AuditLog',
      MetricName: 'DbWriteFailed',
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 10,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [topicRef(prod)],
      OKActions: [topicRef(prod)],
    });
  });

  it.each(['Dropped', 'Evicted', 'Quarantined', 'DiffFailed'])(
    'alarms on any %s entry in 5 minutes, to the operations topic',
    (metricName) => {
      prod.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AuditLog',
        MetricName: metricName,
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [topicRef(prod)],
        OKActions: [topicRef(prod)],
      });
    },
  );

  it('names the quarantine alarm as the runbook does, and points to the runbook', () => {
    prod.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Quarantined',
      AlarmName: 'audit-entries-quarantined-prod',
      AlarmDescription: Match.stringLikeRegexp('quarantined.*docs/RUNBOOK.md'),
    });
  });

  it('subscribes the alarm email only when one is given', () => {
    prod.resourceCountIs('AWS::SNS::Subscription', 0);
    const template = synth({ environment: 'prod', alarmEmail: 'ops@example.com' });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: topicRef(template),
    });
  });
});

describe('buildApp', () => {
  it('synthesizes a nonprod stack keeping 7 days and a prod stack keeping 30', () => {
    const assembly = buildApp(newApp()).synth();
    const retention = Object.fromEntries(
      assembly.stacks.map((stack) => {
        const groups = Object.values(
          stack.template.Resources as Record<string, { Type: string; Properties: { RetentionInDays?: number } }>,
        ).filter((resource) => resource.Type === 'AWS::Logs::LogGroup');
        return [stack.stackName, groups.map((group) => group.Properties.RetentionInDays)];
      }),
    );
    expect(retention).toEqual({
      'AuditObservability-nonprod': [7],
      'AuditObservability-prod': [30],
    });
  });
});
