// A WAFv2 WebACL with AWS's managed rule groups and a per-IP rate limit, logging to an
// encrypted CloudWatch log group. Used for the ALB (REGIONAL) and CloudFront (CLOUDFRONT,
// which AWS accepts only in us-east-1: the Edge stack lives there).
import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { newLogGroup } from './common';

export interface WebAclProps {
  readonly scope: 'REGIONAL' | 'CLOUDFRONT';
  readonly name: string;
  readonly rateLimit: number;
  readonly logsKey: kms.IKey;
  readonly logRetentionDays: number;
}

const MANAGED_GROUPS = [
  'AWSManagedRulesCommonRuleSet',
  'AWSManagedRulesKnownBadInputsRuleSet',
  'AWSManagedRulesAmazonIpReputationList',
  'AWSManagedRulesSQLiRuleSet',
];

export class WebAcl extends Construct {
  readonly acl: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: WebAclProps) {
    super(scope, id);
    const visibility = (metricName: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      metricName,
      sampledRequestsEnabled: true,
    });
    const rules: wafv2.CfnWebACL.RuleProperty[] = MANAGED_GROUPS.map((name, i) => ({
      name,
      priority: i + 1,
      overrideAction: { none: {} },
      statement: {
        managedRuleGroupStatement: {
          vendorName: 'AWS',
          name,
          // Mail bodies (POST /v1/mail) reach 20,000 characters, above the common set's 8 KB
          // body limit; the API enforces its own 64 KiB limit. The rule still counts.
          ruleActionOverrides:
            name === 'AWSManagedRulesCommonRuleSet' ? [{ name: 'SizeRestrictions_BODY', actionToUse: { count: {} } }] : undefined,
        },
      },
      visibilityConfig: visibility(name),
    }));
    rules.push({
      name: 'RateLimitPerIp',
      priority: MANAGED_GROUPS.length + 1,
      action: { block: {} },
      statement: { rateBasedStatement: { limit: props.rateLimit, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
      visibilityConfig: visibility('RateLimitPerIp'),
    });
    this.acl = new wafv2.CfnWebACL(this, 'WebAcl', {
      name: props.name,
      scope: props.scope,
      defaultAction: { allow: {} },
      visibilityConfig: visibility(props.name),
      rules,
    });

    // WAF requires the log group's name to start with aws-waf-logs-.
    const logs = newLogGroup(this, 'Logs', props.logsKey, props.logRetentionDays, `aws-waf-logs-${props.name}`);
    new wafv2.CfnLoggingConfiguration(this, 'Logging', {
      resourceArn: this.acl.attrArn,
      logDestinationConfigs: [Stack.of(this).formatArn({ service: 'logs', resource: 'log-group', resourceName: logs.logGroupName, arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
      // Never log the bearer tokens.
      redactedFields: [{ singleHeader: { Name: 'authorization' } }],
    });
  }
}
