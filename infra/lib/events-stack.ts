// The event path: DynamoDB Streams → relay Lambda → the projector's SQS FIFO queue (one
// message group per stream) → projector Lambda; and relay → EventBridge bus (archived) →
// one rule per exported aggregate type → the SFTP worker's FIFO queue. Bus, rules,
// queues and their settings all come from topology.json.
import { Duration, Stack, StackProps } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { grantSecretRead, importTables, newKey, suppress } from './common';
import { AppConfig } from './config';
import { databaseUrl } from './data-stack';
import { RustFunction } from './rust-function';
import { Topology, queue as queueSpec, rebase } from './topology';

export interface EventsStackProps extends StackProps {
  readonly app: AppConfig;
  readonly topology: Topology;
  readonly vpc: ec2.IVpc;
  readonly logsKey: kms.IKey;
  readonly lambdaSgId: string;
  readonly sftpSgId: string;
  readonly tables: Record<string, dynamodb.ITable>;
  readonly tablesKey: kms.IKey;
  /** Wraps clients' personal-data keys: the projector and the SFTP worker open them. */
  readonly personalDataKey: kms.IKey;
  readonly proxy: rds.IDatabaseProxy;
  readonly databaseSecret: secretsmanager.ISecret;
  readonly sftpSecret: secretsmanager.ISecret;
  readonly secretsKey: kms.IKey;
  readonly sftpClientId: string;
  readonly tokenUrl: string;
  /** Whose sign-in histories the sign-in audit reads. */
  readonly userPool: cognito.IUserPool;
}

/** How many batches the projector may apply at once (the Aurora connections it may take). */
export const PROJECTOR_MAX_CONCURRENCY = 5;

export class EventsStack extends Stack {
  readonly bus: events.EventBus;
  readonly queuesKey: kms.Key;
  /** By topology role. */
  readonly queues: Record<string, sqs.Queue> = {};
  /** By topology role. */
  readonly deadLetterQueues: Record<string, sqs.Queue> = {};
  /** Stream records the relay gave up on, and events EventBridge could not deliver. */
  readonly streamFailures: sqs.Queue;
  readonly deliveryFailures: sqs.Queue;
  readonly scheduleFailures: sqs.Queue;
  readonly relay: lambda.Function;
  readonly projector: lambda.Function;
  readonly sftp: lambda.Function;
  /** Reads the pool's sign-in histories: failed sign-ins to the system log. */
  readonly signInAudit: lambda.Function;

  constructor(scope: Construct, id: string, props: EventsStackProps) {
    super(scope, id, props);
    const { app, topology } = props;
    const config = app.env;
    const name = (n: string): string => rebase(topology, config.prefix, n);
    // Imported immutable: every rule is declared in the Network stack, none added here.
    const sg = (sid: string, sgId: string): ec2.ISecurityGroup =>
      ec2.SecurityGroup.fromSecurityGroupId(this, sid, sgId, { mutable: false, allowAllOutbound: false });
    const lambdaSg = sg('LambdaSg', props.lambdaSgId);
    const tables = importTables(this, props.tables, props.tablesKey);

    this.queuesKey = newKey(this, 'QueuesKey', `Ledgerline ${config.name}: SQS queues`);
    // EventBridge encrypts what it delivers to the queues with this key.
    this.queuesKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeDelivers',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );

    const failureQueue = (qid: string): sqs.Queue => {
      const q = new sqs.Queue(this, qid, {
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: this.queuesKey,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      suppress(q, [{ id: 'AwsSolutions-SQS3', reason: 'This queue is itself a dead-letter queue (failed records are kept here for 14 days).' }]);
      return q;
    };
    this.streamFailures = failureQueue('StreamFailures');
    this.deliveryFailures = failureQueue('DeliveryFailures');
    this.scheduleFailures = failureQueue('ScheduleFailures');

    for (const spec of topology.queues) {
      const dlq = new sqs.Queue(this, `Dlq-${spec.role}`, {
        queueName: name(spec.deadLetterQueue),
        fifo: spec.fifo || undefined,
        contentBasedDeduplication: spec.contentBasedDeduplication || undefined,
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: this.queuesKey,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      suppress(dlq, [{ id: 'AwsSolutions-SQS3', reason: 'This queue is the dead-letter queue of its topology queue.' }]);
      this.deadLetterQueues[spec.role] = dlq;
      this.queues[spec.role] = new sqs.Queue(this, `Queue-${spec.role}`, {
        queueName: name(spec.name),
        fifo: spec.fifo || undefined,
        contentBasedDeduplication: spec.contentBasedDeduplication || undefined,
        visibilityTimeout: Duration.seconds(spec.visibilityTimeoutSeconds),
        // High throughput: deduplication and the quota per message group (one per stream).
        deduplicationScope: spec.highThroughput ? sqs.DeduplicationScope.MESSAGE_GROUP : undefined,
        fifoThroughputLimit: spec.highThroughput ? sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID : undefined,
        deadLetterQueue: { queue: dlq, maxReceiveCount: spec.maxReceiveCount },
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: this.queuesKey,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
    }

    this.bus = new events.EventBus(this, 'Bus', { eventBusName: name(topology.bus) });
    // Everything published is archived, so history can be replayed to a new consumer.
    new events.Archive(this, 'Archive', {
      sourceEventBus: this.bus,
      eventPattern: { account: [this.account] },
      retention: config.eventArchiveRetentionDays > 0 ? Duration.days(config.eventArchiveRetentionDays) : undefined,
      description: `Every event on ${name(topology.bus)}, for replay`,
    });

    // One rule per topology rule. L1: the pattern is EventBridge JSON exactly as the topology gives it.
    const senders: Record<string, string[]> = {};
    const rules: events.CfnRule[] = [];
    for (const [i, spec] of topology.rules.entries()) {
      const rule = new events.CfnRule(this, `Rule-${i}`, {
        name: name(spec.name),
        eventBusName: this.bus.eventBusName,
        eventPattern: spec.pattern,
        state: 'ENABLED',
        targets: spec.targets.map((role) => ({
          id: role,
          arn: this.queues[role].queueArn,
          sqsParameters: { messageGroupId: spec.messageGroupId },
          deadLetterConfig: { arn: this.deliveryFailures.queueArn },
          retryPolicy: { maximumRetryAttempts: 185, maximumEventAgeInSeconds: 86400 },
        })),
      });
      rules.push(rule);
      for (const role of spec.targets) (senders[role] ??= []).push(rule.attrArn);
    }
    // Only the rules may send: to each queue the rules that target it, to the delivery DLQ all of them.
    const onlyRules = (q: sqs.Queue, ruleArns: string[]): void => {
      q.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'OnlyTheRules',
          principals: [new iam.ServicePrincipal('events.amazonaws.com')],
          actions: ['sqs:SendMessage'],
          resources: [q.queueArn],
          conditions: { ArnEquals: { 'aws:SourceArn': ruleArns } },
        }),
      );
    };
    for (const [role, arns] of Object.entries(senders)) onlyRules(this.queues[role], arns);
    onlyRules(this.deliveryFailures, rules.map((r) => r.attrArn));

    const readDatabase = {
      CRM_READ_DATABASE_URL: databaseUrl(props.proxy.endpoint),
      CRM_READ_DATABASE_SECRET_ARN: props.databaseSecret.secretArn,
    };
    const common = { app, vpc: props.vpc, logsKey: props.logsKey };

    // Relay: the events table's stream → the bus, and → the projector's queue with each
    // stream its own message group, in order (one batch per shard at a time).
    this.relay = new RustFunction(this, 'Relay', {
      ...common,
      packageName: 'relay-lambda',
      description: 'DynamoDB Streams → EventBridge and the projector queue',
      securityGroup: lambdaSg,
      environment: {
        CRM_EVENT_BUS: this.bus.eventBusName,
        CRM_PROJECTOR_QUEUE_URL: this.queues.projector.queueUrl,
        CRM_DYNAMODB_TABLE_PREFIX: config.prefix,
      },
      timeout: Duration.seconds(60),
      reservedConcurrency: 10,
    }).fn;
    this.relay.addEventSource(
      new sources.DynamoEventSource(tables.events, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        parallelizationFactor: 1,
        reportBatchItemFailures: true,
        bisectBatchOnError: true,
        retryAttempts: 10,
        maxRecordAge: Duration.hours(24),
        onFailure: new sources.SqsDlq(this.streamFailures),
      }),
    );
    this.bus.grantPutEventsTo(this.relay);
    this.queues.projector.grantSendMessages(this.relay);
    // The relay keeps the global Merkle log: the only writer of the ledger table.
    tables.ledger.grantReadWriteData(this.relay);

    // Projector: the projector queue → Aurora read models (through RDS Proxy).
    const projectorSpec = queueSpec(topology, 'projector');
    this.projector = new RustFunction(this, 'Projector', {
      ...common,
      packageName: 'projector-lambda',
      description: 'SQS → Aurora read models',
      securityGroup: lambdaSg,
      environment: { ...readDatabase, CRM_DYNAMODB_TABLE_PREFIX: config.prefix, CRM_DATA_KEY_KMS_KEY: props.personalDataKey.keyArn },
      // Below the visibility timeout, so a slow batch is not delivered twice at once.
      timeout: Duration.seconds(Math.floor(projectorSpec.visibilityTimeoutSeconds / 2)),
      reservedConcurrency: PROJECTOR_MAX_CONCURRENCY,
    }).fn;
    this.projector.addEventSource(
      new sources.SqsEventSource(this.queues.projector, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: PROJECTOR_MAX_CONCURRENCY,
      }),
    );
    // Gaps in a stream are fetched from the event store.
    for (const role of ['events', 'snapshots']) tables[role].grantReadData(this.projector);
    // Clients' personal data opens with their data keys, which the projector reads
    // (the idempotency table's data-key items) and unwraps.
    const personalDataKey = kms.Key.fromKeyArn(this, 'ImportedPersonalDataKey', props.personalDataKey.keyArn);
    tables.idempotency.grantReadData(this.projector);
    personalDataKey.grantDecrypt(this.projector);
    grantSecretRead(this.projector, props.databaseSecret, props.secretsKey);

    // SFTP worker: inbound files on a schedule, exports from its queue.
    const sftpSpec = queueSpec(topology, 'sftpExports');
    const sftp = config.sftp;
    this.sftp = new RustFunction(this, 'Sftp', {
      ...common,
      packageName: 'sftp-lambda',
      description: 'SFTP worker: core banking files in, exports out',
      securityGroup: sg('SftpSg', props.sftpSgId),
      environment: {
        ...readDatabase,
        CRM_API_URL: `https://${config.apiOriginDomain}`,
        CRM_TOKEN_URL: props.tokenUrl,
        CRM_SFTP_SECRET_ARN: props.sftpSecret.secretArn,
        CRM_SFTP_CLIENT_ID: props.sftpClientId,
        CRM_DYNAMODB_TABLE_PREFIX: config.prefix,
        CRM_DATA_KEY_KMS_KEY: props.personalDataKey.keyArn,
        CRM_SFTP_HOST: sftp.host,
        CRM_SFTP_PORT: String(sftp.port),
        CRM_SFTP_USER: sftp.user,
        CRM_SFTP_HOST_KEY: sftp.hostKey,
        CRM_SFTP_INBOX: sftp.inbox,
        CRM_SFTP_OUTBOX: sftp.outbox,
        CRM_SFTP_ARCHIVE: sftp.archive,
        CRM_SFTP_ERROR: sftp.error,
      },
      timeout: Duration.seconds(Math.floor((sftpSpec.visibilityTimeoutSeconds * 3) / 4)),
      memorySize: 512,
      // Two export batches (one per message group) and one scheduled run at most.
      reservedConcurrency: 3,
      deadLetterQueue: this.scheduleFailures,
    }).fn;
    this.sftp.addEventSource(
      new sources.SqsEventSource(this.queues.sftpExports, { batchSize: 10, reportBatchItemFailures: true, maxConcurrency: 2 }),
    );
    for (const role of ['events', 'snapshots']) tables[role].grantReadData(this.sftp);
    tables.idempotency.grantReadData(this.sftp);
    personalDataKey.grantDecrypt(this.sftp);
    grantSecretRead(this.sftp, props.databaseSecret, props.secretsKey);
    grantSecretRead(this.sftp, props.sftpSecret, props.secretsKey);

    // The worker recognises a scheduled run by EventBridge's scheduled-event shape.
    const schedulerRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': this.account } } }),
    });
    // Scheduler writes undeliverable runs to the encrypted failure queue.
    this.queuesKey.grant(schedulerRole, 'kms:GenerateDataKey', 'kms:Decrypt');
    new scheduler.Schedule(this, 'SftpSchedule', {
      description: 'SFTP worker: read the inbox',
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(sftp.scheduleMinutes)),
      target: new schedulerTargets.LambdaInvoke(this.sftp, {
        role: schedulerRole,
        input: scheduler.ScheduleTargetInput.fromObject({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }),
        deadLetterQueue: this.scheduleFailures,
        retryAttempts: 2,
        maxEventAge: Duration.minutes(sftp.scheduleMinutes),
      }),
    });

    // Failed sign-ins to the system log. Cognito calls no trigger for a wrong password,
    // but threat protection keeps every attempt in the user's sign-in history; this
    // reads the histories each minute (projections::sign_in_failures). One run at a
    // time; a failed run leaves its read position, so the next reads the same stretch.
    this.signInAudit = new RustFunction(this, 'SignInAudit', {
      ...common,
      packageName: 'sign-in-audit-lambda',
      description: 'Cognito sign-in histories → failed sign-ins in the system log',
      securityGroup: lambdaSg,
      environment: { ...readDatabase, CRM_USER_POOL_ID: props.userPool.userPoolId },
      timeout: Duration.minutes(2),
      reservedConcurrency: 1,
      deadLetterQueue: this.scheduleFailures,
    }).fn;
    grantSecretRead(this.signInAudit, props.databaseSecret, props.secretsKey);
    this.signInAudit.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['cognito-idp:ListUsers', 'cognito-idp:AdminListUserAuthEvents'],
        resources: [props.userPool.userPoolArn],
      }),
    );
    new scheduler.Schedule(this, 'SignInAuditSchedule', {
      description: 'Failed sign-ins: read the pool\'s sign-in histories',
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
      target: new schedulerTargets.LambdaInvoke(this.signInAudit, {
        role: schedulerRole,
        input: scheduler.ScheduleTargetInput.fromObject({}),
        deadLetterQueue: this.scheduleFailures,
        // The next run, a minute later, reads what a lost one would have.
        retryAttempts: 0,
        maxEventAge: Duration.minutes(1),
      }),
    });
    suppress(schedulerRole, [
      { id: 'AwsSolutions-IAM5', reason: "Scheduler's role may invoke the scheduled functions' versions (<function ARN>:*), as CDK grants.", appliesTo: [{ regex: '/^Resource::<(Sftp|SignInAudit)Function[0-9A-F]+\\.Arn>:\\*$/g' }] },
    ]);
  }
}
