// The stores: the DynamoDB event store (tables from topology.json), Aurora PostgreSQL for
// the read models and the system log, RDS Proxy for the Lambdas, the secrets, and the
// customer-managed keys of each.
//
// Read-model migrations: nothing here runs them. Every process that opens the read store
// (`projections::ReadStore::open` / `SystemLog::open`, i.e. both services, the projector,
// mail and SFTP Lambdas) applies the embedded `sqlx::migrate!` sets on connect. The two
// sets are numbered apart (1…, 1001…) and ignore each other's versions, and sqlx takes
// an advisory lock, so concurrent starts migrate once.
import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { newKey, newLogGroup, suppress } from './common';
import { newLogBucket } from './log-bucket';
import { EnvironmentConfig } from './config';
import { POSTGRES_PORT } from './network-stack';
import { Topology, rebase } from './topology';

export interface DataStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  readonly topology: Topology;
  readonly vpc: ec2.IVpc;
  readonly logsKey: kms.IKey;
  readonly databaseSgId: string;
  readonly proxySgId: string;
  readonly rotationSgId: string;
}

/**
 * How long a published digest can be neither deleted nor overwritten, by anyone (S3 Object
 * Lock in compliance mode): a bank's record-keeping horizon.
 */
export const DIGEST_RETENTION_YEARS = 10;

export const DATABASE_NAME = 'ledgerline';
export const DATABASE_USER = 'ledgerline';

export class DataStack extends Stack {
  /** By topology role (events, snapshots, idempotency). */
  readonly tables: Record<string, dynamodb.Table> = {};
  readonly tablesKey: kms.Key;
  readonly databaseKey: kms.Key;
  readonly secretsKey: kms.Key;
  readonly cluster: rds.DatabaseCluster;
  readonly databaseSecret: secretsmanager.ISecret;
  readonly proxy: rds.DatabaseProxy;
  readonly sftpSecret: secretsmanager.Secret;
  /**
   * Wraps each client's data key (crypto-shredding, docs/audit.md): the services and
   * Lambdas that read or write clients' personal data use it; the DBAs never may.
   */
  readonly personalDataKey: kms.Key;
  /** Signs the ledger's digests (ECDSA P-256); only the query service may use it. */
  readonly digestKey: kms.Key;
  /** Where the digests are published, under Object Lock. */
  readonly digestBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const { config, topology } = props;
    // Imported immutable: every rule is declared in the Network stack, none added here.
    const sg = (sid: string, sgId: string): ec2.ISecurityGroup =>
      ec2.SecurityGroup.fromSecurityGroupId(this, sid, sgId, { mutable: false, allowAllOutbound: false });

    this.tablesKey = newKey(this, 'TablesKey', `Ledgerline ${config.name}: DynamoDB event store`);
    this.databaseKey = newKey(this, 'DatabaseKey', `Ledgerline ${config.name}: Aurora storage and Performance Insights`);
    this.secretsKey = newKey(this, 'SecretsKey', `Ledgerline ${config.name}: Secrets Manager secrets`);
    this.personalDataKey = newKey(this, 'PersonalDataKey', `Ledgerline ${config.name}: wraps clients' personal-data keys`);

    for (const spec of topology.tables) {
      const attr = (k: { name: string; type: string }): dynamodb.Attribute => ({
        name: k.name,
        type: k.type === 'N' ? dynamodb.AttributeType.NUMBER : k.type === 'B' ? dynamodb.AttributeType.BINARY : dynamodb.AttributeType.STRING,
      });
      this.tables[spec.role] = new dynamodb.Table(this, `Table-${spec.role}`, {
        tableName: rebase(topology, config.prefix, spec.name),
        partitionKey: attr(spec.partitionKey),
        sortKey: spec.sortKey ? attr(spec.sortKey) : undefined,
        stream: spec.stream ? dynamodb.StreamViewType[spec.stream] : undefined,
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        deletionProtection: true,
        encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryptionKey: this.tablesKey,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }

    // The ledger's digests (docs/audit.md): signed by an asymmetric key the store's
    // operators cannot use, published where no one can rewrite them.
    this.digestKey = new kms.Key(this, 'DigestKey', {
      description: `Ledgerline ${config.name}: signs the ledger's digests`,
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy: RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(30),
    });
    const digestAccessLogs = newLogBucket(this, 'DigestAccessLogs', { retentionDays: config.logRetentionDays });
    this.digestBucket = new s3.Bucket(this, 'Digests', {
      // The digests are public by design (auditors hold copies); what matters is that
      // none can be rewritten.
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(365 * DIGEST_RETENTION_YEARS)),
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: digestAccessLogs,
      serverAccessLogsPrefix: 'digests/',
      lifecycleRules: [
        {
          id: 'archive',
          transitions: [{ storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) }],
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
    });

    // Aurora PostgreSQL Serverless v2: a writer and a reader in different zones.
    const clusterIdentifier = `${config.prefix}read-models`;
    // Created first and named as RDS names it, so the exported logs get our key and retention.
    const postgresLogs = newLogGroup(this, 'PostgresLogs', props.logsKey, config.logRetentionDays, `/aws/rds/cluster/${clusterIdentifier}/postgresql`);
    this.cluster = new rds.DatabaseCluster(this, 'Aurora', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_17_7 }),
      clusterIdentifier,
      defaultDatabaseName: DATABASE_NAME,
      credentials: rds.Credentials.fromGeneratedSecret(DATABASE_USER, {
        secretName: `${config.prefix}aurora`,
        encryptionKey: this.secretsKey,
      }),
      writer: rds.ClusterInstance.serverlessV2('Writer', {
        availabilityZone: config.availabilityZones[0],
        publiclyAccessible: false,
        autoMinorVersionUpgrade: true,
        enablePerformanceInsights: true,
        performanceInsightEncryptionKey: this.databaseKey,
      }),
      readers: [
        rds.ClusterInstance.serverlessV2('Reader', {
          availabilityZone: config.availabilityZones[1],
          publiclyAccessible: false,
          autoMinorVersionUpgrade: true,
          enablePerformanceInsights: true,
          performanceInsightEncryptionKey: this.databaseKey,
          scaleWithWriter: true,
        }),
      ],
      serverlessV2MinCapacity: config.auroraMinCapacity,
      serverlessV2MaxCapacity: config.auroraMaxCapacity,
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [sg('DatabaseSg', props.databaseSgId)],
      port: POSTGRES_PORT,
      storageEncrypted: true,
      storageEncryptionKey: this.databaseKey,
      iamAuthentication: true,
      parameters: { 'rds.force_ssl': '1', log_connections: '1', log_disconnections: '1' },
      cloudwatchLogsExports: ['postgresql'],
      backup: { retention: Duration.days(config.backupRetentionDays), preferredWindow: '02:00-03:00' },
      preferredMaintenanceWindow: 'sun:03:30-sun:04:30',
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
      copyTagsToSnapshot: true,
      monitoringInterval: Duration.seconds(60),
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: this.databaseKey,
    });
    this.cluster.node.addDependency(postgresLogs);
    this.databaseSecret = this.cluster.secret!;

    // Hosted rotation (AWS's own rotation function, deployed by Secrets Manager in our VPC),
    // named so that its log group can be ours: encrypted and with retention.
    const rotationFunction = `${config.prefix}aurora-rotation`;
    const rotationLogs = newLogGroup(this, 'RotationLogs', props.logsKey, config.logRetentionDays, `/aws/lambda/${rotationFunction}`);
    const rotation = this.databaseSecret.addRotationSchedule('Rotation', {
      hostedRotation: secretsmanager.HostedRotation.postgreSqlSingleUser({
        functionName: rotationFunction,
        vpc: props.vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [sg('RotationSg', props.rotationSgId)],
      }),
      automaticallyAfter: Duration.days(30),
    });
    rotation.node.addDependency(rotationLogs);

    const proxyName = `${config.prefix}read-models`;
    // RDS Proxy logs to this group by name; created first to get our key and retention.
    const proxyLogs = newLogGroup(this, 'ProxyLogs', props.logsKey, config.logRetentionDays, `/aws/rds/proxy/${proxyName}`);
    this.proxy = this.cluster.addProxy('Proxy', {
      dbProxyName: proxyName,
      secrets: [this.databaseSecret],
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [sg('ProxySg', props.proxySgId)],
      requireTLS: true,
      borrowTimeout: Duration.seconds(30),
    });
    this.proxy.node.addDependency(proxyLogs);

    // Filled by the bank: {"private_key": "<OpenSSH key>", "client_secret": "<SFTP client's secret>"}.
    this.sftpSecret = new secretsmanager.Secret(this, 'SftpSecret', {
      secretName: `${config.prefix}sftp-worker`,
      description: 'SFTP worker: {"private_key","client_secret"}; filled by the bank after deploy',
      encryptionKey: this.secretsKey,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ private_key: '', client_secret: '' }),
        generateStringKey: 'placeholder',
      },
      removalPolicy: RemovalPolicy.RETAIN,
    });

    suppress(this.sftpSecret, [
      { id: 'AwsSolutions-SMG4', reason: "The SFTP key and the Cognito client's secret are rotated by the bank together with the core banking system, not by a Lambda." },
    ]);
    suppress(this.cluster, [
      { id: 'AwsSolutions-RDS11', reason: 'The read models live on the standard PostgreSQL port that the services\' CRM_READ_DATABASE_URL names; only three security groups reach it.' },
      {
        id: 'AwsSolutions-IAM4',
        reason: 'Enhanced monitoring uses the AWS managed AmazonRDSEnhancedMonitoringRole policy (CloudWatch Logs writes to RDSOSMetrics only).',
        appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole'],
      },
    ]);
  }
}

/** The read database URL the Rust code takes; the password comes from the secret, never the URL. */
export function databaseUrl(host: string): string {
  return `postgres://${DATABASE_USER}@${host}:${POSTGRES_PORT}/${DATABASE_NAME}?sslmode=require`;
}
