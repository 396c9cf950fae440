// Security and operations: CloudTrail, GuardDuty, the alarm topic, alarms and the
// dashboard, and the two human roles (operators read logs; database administrators
// manage and back up the stores but cannot read what is in them).
import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as cloudtrail from 'aws-cdk-lib/aws-cloudtrail';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as guardduty from 'aws-cdk-lib/aws-guardduty';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { logGroupName, newKey, newLogGroup, suppress } from './common';
import { EDGE_REGION, EnvironmentConfig } from './config';
import { newLogBucket } from './log-bucket';

export interface SecurityStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  readonly logsKey: kms.IKey;
  /** Keys that protect customer data: the DBA role may never use them. */
  readonly dataKeys: kms.IKey[];
  readonly tables: dynamodb.ITable[];
  readonly database: rds.IDatabaseCluster;
  readonly databaseClusterIdentifier: string;
  readonly databaseSecret: secretsmanager.ISecret;
  /** Every dead-letter queue, by a readable name. */
  readonly deadLetterQueues: Record<string, sqs.IQueue>;
  readonly projectorQueue: sqs.IQueue;
  /** Every Lambda, by a readable name. */
  readonly functions: Record<string, lambda.IFunction>;
  readonly relay: lambda.IFunction;
  readonly alb: elbv2.ApplicationLoadBalancer;
  readonly ecsCluster: ecs.ICluster;
  readonly services: Record<string, ecs.IBaseService>;
}

export class SecurityStack extends Stack {
  readonly alarmTopic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly operatorRole: iam.Role;
  readonly databaseAdministratorRole: iam.Role;

  constructor(scope: Construct, id: string, props: SecurityStackProps) {
    super(scope, id, props);
    const config = props.config;

    // CloudTrail: every region, global services, validated digests, encrypted, also in Logs.
    const trailKey = newKey(this, 'TrailKey', `Ledgerline ${config.name}: CloudTrail`);
    trailKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudTrailEncrypts',
        principals: [new iam.ServicePrincipal('cloudtrail.amazonaws.com')],
        actions: ['kms:GenerateDataKey*', 'kms:DescribeKey'],
        resources: ['*'],
        conditions: { StringLike: { 'kms:EncryptionContext:aws:cloudtrail:arn': `arn:${this.partition}:cloudtrail:*:${this.account}:trail/*` }, StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    const accessLogs = newLogBucket(this, 'S3AccessLogs', { retentionDays: config.logRetentionDays });
    const trailBucket = new s3.Bucket(this, 'TrailBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: trailKey,
      bucketKeyEnabled: true,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'cloudtrail-bucket/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'age-out',
          transitions: [{ storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) }],
          expiration: Duration.days(Math.max(config.logRetentionDays, 365)),
          noncurrentVersionExpiration: Duration.days(30),
        },
      ],
    });
    new cloudtrail.Trail(this, 'Trail', {
      bucket: trailBucket,
      encryptionKey: trailKey,
      isMultiRegionTrail: true,
      includeGlobalServiceEvents: true,
      enableFileValidation: true,
      managementEvents: cloudtrail.ReadWriteType.ALL,
      sendToCloudWatchLogs: true,
      cloudWatchLogGroup: newLogGroup(this, 'TrailLogs', props.logsKey, config.logRetentionDays, logGroupName(config.name, 'cloudtrail')),
    });

    // GuardDuty with every protection a detector can switch on.
    const feature = (name: string, extra: string[] = []): guardduty.CfnDetector.CFNFeatureConfigurationProperty => ({
      name,
      status: 'ENABLED',
      additionalConfiguration: extra.length ? extra.map((n) => ({ name: n, status: 'ENABLED' })) : undefined,
    });
    new guardduty.CfnDetector(this, 'GuardDuty', {
      enable: true,
      findingPublishingFrequency: 'FIFTEEN_MINUTES',
      features: [
        feature('S3_DATA_EVENTS'),
        feature('EKS_AUDIT_LOGS'),
        feature('EBS_MALWARE_PROTECTION'),
        feature('RDS_LOGIN_EVENTS'),
        feature('LAMBDA_NETWORK_LOGS'),
        feature('RUNTIME_MONITORING', ['ECS_FARGATE_AGENT_MANAGEMENT']),
      ],
    });

    // Alarms go to one encrypted topic, mailed to the bank's cloud team.
    const topicKey = newKey(this, 'AlarmsKey', `Ledgerline ${config.name}: alarm topic`);
    topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchPublishes',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    this.alarmTopic = new sns.Topic(this, 'Alarms', { masterKey: topicKey, enforceSSL: true, displayName: `Ledgerline ${config.name} alarms` });
    this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));

    const alarm = (aid: string, metric: cloudwatch.Metric, threshold: number, description: string, opts: Partial<cloudwatch.CreateAlarmOptions> = {}): void => {
      const a = metric.createAlarm(this, aid, {
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
        ...opts,
      });
      a.addAlarmAction(new actions.SnsAction(this.alarmTopic));
      a.addOkAction(new actions.SnsAction(this.alarmTopic));
      this.alarms.push(a);
    };
    const minute = Duration.minutes(1);
    const five = Duration.minutes(5);

    for (const [name, q] of Object.entries(props.deadLetterQueues)) {
      alarm(`Dlq-${name}`, q.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }), 0, `${name}: messages in a dead-letter queue need a look (redrive with crm aws redrive)`);
    }
    alarm('ProjectionLag', props.projectorQueue.metricApproximateAgeOfOldestMessage({ period: minute, statistic: 'Maximum' }), 300, 'Read models are more than 5 minutes behind the event store', { evaluationPeriods: 3 });
    for (const [name, fn] of Object.entries(props.functions)) {
      alarm(`Errors-${name}`, fn.metricErrors({ period: five, statistic: 'Sum' }), 0, `${name} Lambda failed`);
      alarm(`Throttles-${name}`, fn.metricThrottles({ period: five, statistic: 'Sum' }), 0, `${name} Lambda was throttled`);
    }
    alarm('RelayIteratorAge', props.relay.metric('IteratorAge', { period: minute, statistic: 'Maximum' }), 60_000, 'The relay is more than a minute behind the events stream', { evaluationPeriods: 3 });

    const albMetric = (metricName: string): cloudwatch.Metric =>
      new cloudwatch.Metric({ namespace: 'AWS/ApplicationELB', metricName, dimensionsMap: { LoadBalancer: props.alb.loadBalancerFullName }, period: five, statistic: 'Sum' });
    alarm('Alb5xx', albMetric('HTTPCode_ELB_5XX_Count'), 10, 'The load balancer answers 5xx');
    alarm('Target5xx', albMetric('HTTPCode_Target_5XX_Count'), 10, 'The services answer 5xx');

    const db = (metricName: string, statistic = 'Average'): cloudwatch.Metric =>
      new cloudwatch.Metric({ namespace: 'AWS/RDS', metricName, dimensionsMap: { DBClusterIdentifier: props.databaseClusterIdentifier }, period: five, statistic });
    alarm('AuroraCpu', db('CPUUtilization'), 80, 'Aurora CPU above 80%', { evaluationPeriods: 3 });
    alarm('AuroraAcu', db('ACUUtilization'), 90, 'Aurora near its maximum capacity (ACUs)', { evaluationPeriods: 3 });
    alarm('AuroraConnections', db('DatabaseConnections', 'Maximum'), 400, 'Many Aurora connections (pools or RDS Proxy leaking?)', { evaluationPeriods: 3 });
    alarm('AuroraMemory', db('FreeableMemory', 'Minimum'), 256 * 1024 * 1024, 'Aurora freeable memory below 256 MiB', {
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
    });

    for (const [name, svc] of Object.entries(props.services)) {
      const running = new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName: 'RunningTaskCount',
        dimensionsMap: { ClusterName: props.ecsCluster.clusterName, ServiceName: svc.serviceName },
        period: minute,
        statistic: 'Minimum',
      });
      alarm(`RunningTasks-${name}`, running, config.minTasks, `${name}: fewer tasks running than the minimum`, {
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 3,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    }

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: `Ledgerline-${config.name}` });
    for (let i = 0; i < this.alarms.length; i += 4) {
      dashboard.addWidgets(...this.alarms.slice(i, i + 4).map((a) => new cloudwatch.AlarmWidget({ alarm: a, title: a.node.id, width: 6, height: 5 })));
    }

    // People: operators read logs; database administrators manage without reading data.
    const principals = (arns: string[]): iam.IPrincipal =>
      arns.length === 0 ? new iam.AccountRootPrincipal() : new iam.CompositePrincipal(...arns.map((a) => new iam.ArnPrincipal(a)));
    const logArn = (region: string, name: string): string => `arn:${this.partition}:logs:${region}:${this.account}:log-group:${name}`;
    const productLogs = [
      logArn(this.region, `/ledgerline/${config.name}/*`),
      logArn(this.region, `/aws/rds/cluster/${props.databaseClusterIdentifier}/*`),
      logArn(this.region, `/aws/rds/proxy/${props.databaseClusterIdentifier}*`),
      logArn(this.region, `/aws/lambda/${config.prefix}aurora-rotation*`),
      logArn(this.region, `aws-waf-logs-${config.prefix}*`),
      logArn(EDGE_REGION, `aws-waf-logs-${config.prefix}*`),
    ];
    this.operatorRole = new iam.Role(this, 'OperatorRole', {
      assumedBy: principals(config.operatorPrincipals),
      description: 'Ledgerline operators: read the product logs, nothing else',
      maxSessionDuration: Duration.hours(4),
    });
    this.operatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadProductLogs',
        actions: ['logs:DescribeLogStreams', 'logs:GetLogEvents', 'logs:FilterLogEvents', 'logs:StartQuery', 'logs:GetLogGroupFields'],
        resources: productLogs,
      }),
    );
    this.operatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListLogGroupsAndQueries',
        actions: ['logs:DescribeLogGroups', 'logs:GetQueryResults', 'logs:StopQuery', 'logs:DescribeQueries'],
        resources: [`arn:${this.partition}:logs:${this.region}:${this.account}:log-group:*`],
      }),
    );
    this.operatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DecryptLogsThroughLogsOnly',
        actions: ['kms:Decrypt'],
        resources: [props.logsKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `logs.${this.region}.amazonaws.com` } },
      }),
    );

    this.databaseAdministratorRole = new iam.Role(this, 'DatabaseAdministratorRole', {
      assumedBy: principals(config.operatorPrincipals),
      description: 'Ledgerline database administrators: manage and back up Aurora and DynamoDB, no access to data',
      maxSessionDuration: Duration.hours(4),
    });
    const dba = this.databaseAdministratorRole;
    const rdsArn = (type: string, name: string): string => `arn:${this.partition}:rds:${this.region}:${this.account}:${type}:${name}`;
    dba.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ManageAurora',
        actions: [
          'rds:DescribeDBClusters',
          'rds:DescribeDBInstances',
          'rds:DescribeDBClusterSnapshots',
          'rds:DescribeDBClusterParameters',
          'rds:DescribeDBProxies',
          'rds:DescribeDBProxyTargets',
          'rds:DescribeDBLogFiles',
          'rds:ListTagsForResource',
          'rds:ModifyDBCluster',
          'rds:ModifyDBInstance',
          'rds:RebootDBInstance',
          'rds:FailoverDBCluster',
          'rds:CreateDBClusterSnapshot',
          'rds:CopyDBClusterSnapshot',
          'rds:RestoreDBClusterFromSnapshot',
          'rds:RestoreDBClusterToPointInTime',
          'rds:ModifyDBClusterParameterGroup',
        ],
        resources: [
          props.database.clusterArn,
          rdsArn('db', '*'),
          rdsArn('cluster-snapshot', `${props.databaseClusterIdentifier}-*`),
          rdsArn('cluster-snapshot', 'rds:*'),
          rdsArn('cluster-pg', '*'),
          rdsArn('db-proxy', '*'),
          rdsArn('subgrp', '*'),
        ],
      }),
    );
    const tableArns = props.tables.map((t) => t.tableArn);
    dba.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ManageDynamoDb',
        actions: [
          'dynamodb:DescribeTable',
          'dynamodb:DescribeContinuousBackups',
          'dynamodb:DescribeTimeToLive',
          'dynamodb:UpdateTable',
          'dynamodb:UpdateContinuousBackups',
          'dynamodb:CreateBackup',
          'dynamodb:DescribeBackup',
          'dynamodb:RestoreTableFromBackup',
          'dynamodb:RestoreTableToPointInTime',
          'dynamodb:ListTagsOfResource',
        ],
        resources: [...tableArns, ...tableArns.map((a) => `${a}/backup/*`)],
      }),
    );
    dba.addToPolicy(new iam.PolicyStatement({ sid: 'ListBackups', actions: ['dynamodb:ListBackups', 'dynamodb:ListTables'], resources: ['*'] }));
    // "No access to data": explicit denies win over anything else the principal holds.
    dba.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DenyDataKeys',
        effect: iam.Effect.DENY,
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*', 'kms:CreateGrant'],
        resources: props.dataKeys.map((k) => k.keyArn),
      }),
    );
    dba.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DenyDataReads',
        effect: iam.Effect.DENY,
        actions: [
          'dynamodb:GetItem',
          'dynamodb:BatchGetItem',
          'dynamodb:Query',
          'dynamodb:Scan',
          'dynamodb:PartiQLSelect',
          'dynamodb:GetRecords',
          'dynamodb:GetShardIterator',
          'dynamodb:ExportTableToPointInTime',
          'rds-data:ExecuteStatement',
          'rds-data:BatchExecuteStatement',
          'rds-db:connect',
        ],
        resources: ['*'],
      }),
    );
    dba.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DenyDatabaseSecret',
        effect: iam.Effect.DENY,
        actions: ['secretsmanager:GetSecretValue'],
        resources: [props.databaseSecret.secretArn],
      }),
    );

    suppress(this.operatorRole, [
      {
        id: 'AwsSolutions-IAM5',
        reason: 'Log groups are matched by the product\'s name prefixes (/ledgerline/<env>/*, the cluster\'s, the WAF\'s); DescribeLogGroups and query results are account-level reads without data.',
        appliesTo: [{ regex: '/^Resource::arn:(aws[a-z-]*|<AWS::Partition>):logs:.*$/g' }],
      },
    ]);
    suppress(dba, [
      {
        id: 'AwsSolutions-IAM5',
        reason: 'Instances, snapshots, parameter groups and backups get generated names under the cluster and tables; ListBackups/ListTables take no resource. Data access is denied explicitly.',
        appliesTo: [{ regex: '/^Resource::(arn:(aws[a-z-]*|<AWS::Partition>):rds:.*|.*\\/backup\\/\\*|\\*)$/g' }],
      },
    ]);
  }
}
