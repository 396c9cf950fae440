// One Rust Lambda as every one of ours is deployed: provided.al2023, the zip that
// scripts/package-lambdas builds (so synth builds no Rust), in the VPC's private subnets,
// its own encrypted log group, X-Ray tracing, JSON logs and a bounded concurrency.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { logGroupName, newLogGroup, skipCheckov, suppress } from './common';
import { AppConfig } from './config';

export interface RustFunctionProps {
  readonly app: AppConfig;
  /** The package directory under lambdaAssetsDir, e.g. `relay-lambda`. */
  readonly packageName: string;
  readonly description: string;
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly logsKey: kms.IKey;
  readonly environment: Record<string, string>;
  readonly timeout: Duration;
  readonly memorySize?: number;
  readonly reservedConcurrency: number;
  /** For functions invoked asynchronously. */
  readonly deadLetterQueue?: sqs.IQueue;
  /** For functions invoked synchronously: who invokes them and where a failure goes (checkov's DLQ check does not apply). */
  readonly synchronousCaller?: string;
}

/** The zip of one Lambda package; a clear error when it has not been built. */
export function lambdaAsset(app: AppConfig, packageName: string): string {
  const zip = path.join(app.lambdaAssetsDir, packageName, 'bootstrap.zip');
  if (!fs.existsSync(zip)) {
    throw new Error(`${zip} is missing: run scripts/package-lambdas, or point -c lambdaAssetsDir=<dir> at built packages`);
  }
  return zip;
}

export class RustFunction extends Construct {
  readonly fn: lambda.Function;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);
    const logGroup = newLogGroup(this, 'Logs', props.logsKey, props.app.env.logRetentionDays, logGroupName(props.app.env.name, `lambda/${props.packageName}`));
    this.fn = new lambda.Function(this, 'Function', {
      description: props.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: props.app.lambdaArchitecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(lambdaAsset(props.app, props.packageName)),
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout,
      environment: props.environment,
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [props.securityGroup],
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
      reservedConcurrentExecutions: props.reservedConcurrency,
      deadLetterQueue: props.deadLetterQueue,
    });

    suppress(this.fn, [
      {
        id: 'AwsSolutions-IAM4',
        reason: 'AWS managed AWSLambdaBasicExecutionRole / AWSLambdaVPCAccessExecutionRole: log writes and the ENI management a VPC Lambda needs (ENI actions take no resource ARN).',
        appliesTo: [
          'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
          'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
        ],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason: 'X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) and dynamodb:ListStreams (stream mapping) accept no resource ARN; test/cases/security.ts allows exactly these on "*".',
        appliesTo: ['Resource::*'],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason: "CDK's encrypt grants on our customer-managed keys (kms:GenerateDataKey*, kms:ReEncrypt*); the resource is the key's ARN.",
        appliesTo: ['Action::kms:GenerateDataKey*', 'Action::kms:ReEncrypt*'],
      },
    ]);
    const skips = [
      { id: 'CKV_AWS_173', comment: 'The environment holds names, URLs and ids only; secrets are read from Secrets Manager at run time.' },
    ];
    if (!props.deadLetterQueue) {
      skips.push({
        id: 'CKV_AWS_116',
        comment:
          props.synchronousCaller ??
          'Invoked synchronously (event source mapping or ALB): failures go to the mapping\'s on-failure destination or the queue\'s redrive DLQ.',
      });
    }
    skipCheckov(this.fn, skips);
  }
}
