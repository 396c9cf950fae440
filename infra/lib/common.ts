// Small helpers every stack uses: customer-managed keys, encrypted log groups, and the
// suppression helpers that force a reason on every cdk-nag and checkov exception.
import { Aws, CfnResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { NagPackSuppression, NagSuppressions } from 'cdk-nag';
import { Construct, IConstruct } from 'constructs';

/** A customer-managed key with yearly rotation, kept when its stack is deleted. */
export function newKey(scope: Construct, id: string, description: string): kms.Key {
  return new kms.Key(scope, id, {
    description,
    enableKeyRotation: true,
    rotationPeriod: Duration.days(365),
    removalPolicy: RemovalPolicy.RETAIN,
    pendingWindow: Duration.days(30),
  });
}

/** A key CloudWatch Logs may use for this account's log groups in this region. */
export function newLogsKey(scope: Construct, id: string, description: string): kms.Key {
  const key = newKey(scope, id, description);
  const region = Stack.of(scope).region;
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchLogs',
      principals: [new iam.ServicePrincipal(`logs.${region}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: {
        ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${region}:${Stack.of(scope).account}:log-group:*` },
      },
    }),
  );
  return key;
}

/** Where the product's own log groups live; the operator role reads this prefix. */
export function logGroupName(envName: string, part: string): string {
  return `/ledgerline/${envName}/${part}`;
}

/** A named log group encrypted with `key`, kept for `days`, and kept when its stack is deleted. */
export function newLogGroup(scope: Construct, id: string, key: kms.IKey, days: number, logGroupName: string): logs.LogGroup {
  return new logs.LogGroup(scope, id, {
    logGroupName,
    encryptionKey: key,
    retention: days as logs.RetentionDays,
    removalPolicy: RemovalPolicy.RETAIN,
  });
}

export interface CheckovSkip {
  readonly id: string;
  readonly comment: string;
}

/** Skips checkov checks on one resource, each with the reason it does not apply. */
export function skipCheckov(construct: IConstruct, skips: CheckovSkip[]): void {
  const resource = construct instanceof CfnResource ? construct : (construct.node.defaultChild as CfnResource | undefined);
  if (!resource) throw new Error(`${construct.node.path} has no CloudFormation resource to annotate`);
  const existing = (resource.getMetadata('checkov') as { skip?: CheckovSkip[] } | undefined)?.skip ?? [];
  resource.addMetadata('checkov', { skip: [...existing, ...skips] });
}

/** cdk-nag suppressions on one construct (and its children), each with a reason. */
export function suppress(construct: IConstruct, suppressions: NagPackSuppression[], applyToChildren = true): void {
  NagSuppressions.addResourceSuppressions(construct, suppressions, applyToChildren);
}

/**
 * Lets `grantee` read `secret` (and decrypt it through Secrets Manager with `key`) by its
 * own policy only. `secret.grantRead` would also write the grantee into the key's policy,
 * which across stacks makes the key's stack depend on the grantee's: a cycle.
 */
export function grantSecretRead(grantee: iam.IGrantable, secret: { secretArn: string }, key: kms.IKey): void {
  const region = Stack.of(key).region;
  iam.Grant.addToPrincipal({ grantee, actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], resourceArns: [secret.secretArn] });
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['kms:Decrypt'],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } },
    }),
  );
}

/**
 * The tables as seen from another stack: imported by ARN with their key imported too, so
 * that grants land in the grantee's policy, never in the Data stack's key policy.
 */
export function importTables(scope: Construct, tables: Record<string, dynamodb.ITable>, key: kms.IKey): Record<string, dynamodb.ITable> {
  const encryptionKey = kms.Key.fromKeyArn(scope, 'ImportedTablesKey', key.keyArn);
  return Object.fromEntries(
    Object.entries(tables).map(([role, t]) => [
      role,
      dynamodb.Table.fromTableAttributes(scope, `Imported-${role}`, { tableArn: t.tableArn, tableStreamArn: t.tableStreamArn, encryptionKey }),
    ]),
  );
}
