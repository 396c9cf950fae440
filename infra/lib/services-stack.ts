// The HTTP side: command-api and query-api on ECS Fargate, the mail Lambda, the ALB that
// routes between them (with its regional WAF) and its access logs.
import { Annotations, CfnOutput, Duration, Stack, StackProps } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { grantSecretRead, importTables, logGroupName, newLogGroup, suppress } from './common';
import { newLogBucket } from './log-bucket';
import { AppConfig } from './config';
import { databaseUrl } from './data-stack';
import { SERVICE_PORT } from './network-stack';
import { RustFunction } from './rust-function';
import { RouteSpec, Topology } from './topology';
import { WebAcl } from './waf';

/** The ECR repositories the Bootstrap stack creates (one per service). */
export const REPOSITORIES = { command: 'ledgerline/command-api', query: 'ledgerline/query-api' } as const;
export const READY_PATH = '/health/ready';
/** The image's user (distroless nonroot). */
const CONTAINER_USER = '65532:65532';

export interface ServicesStackProps extends StackProps {
  readonly app: AppConfig;
  /** The listener rules come from its routes. */
  readonly topology: Topology;
  readonly vpc: ec2.IVpc;
  readonly logsKey: kms.IKey;
  readonly albSgId: string;
  readonly servicesSgId: string;
  readonly lambdaSgId: string;
  readonly tables: Record<string, dynamodb.ITable>;
  readonly tablesKey: kms.IKey;
  readonly cluster: rds.IDatabaseCluster;
  readonly proxy: rds.IDatabaseProxy;
  readonly databaseSecret: secretsmanager.ISecret;
  readonly secretsKey: kms.IKey;
  readonly userPool: cognito.IUserPool;
  readonly clientIds: string[];
  /** The ledger's digests: the key that signs them and the bucket they are published to. */
  readonly digestKey: kms.IKey;
  readonly digestBucket: s3.IBucket;
  /** Wraps clients' personal-data keys. */
  readonly personalDataKey: kms.IKey;
}

export class ServicesStack extends Stack {
  readonly alb: elbv2.ApplicationLoadBalancer;
  readonly cluster: ecs.Cluster;
  readonly commandService: ecs.FargateService;
  readonly queryService: ecs.FargateService;
  readonly commandTargets: elbv2.ApplicationTargetGroup;
  readonly queryTargets: elbv2.ApplicationTargetGroup;
  readonly mail: lambda.Function;

  constructor(scope: Construct, id: string, props: ServicesStackProps) {
    super(scope, id, props);
    const { app } = props;
    const config = app.env;
    // Imported immutable: every rule is declared in the Network stack, none added here.
    const sg = (sid: string, sgId: string): ec2.ISecurityGroup =>
      ec2.SecurityGroup.fromSecurityGroupId(this, sid, sgId, { mutable: false, allowAllOutbound: false });
    const albSg = sg('AlbSg', props.albSgId);
    const servicesSg = sg('ServicesSg', props.servicesSgId);
    const tables = importTables(this, props.tables, props.tablesKey);
    // Imported by ARN, so ECS's grant to the execution role stays in this stack.
    const databaseSecret = secretsmanager.Secret.fromSecretAttributes(this, 'DatabaseSecret', {
      secretCompleteArn: props.databaseSecret.secretArn,
      encryptionKey: kms.Key.fromKeyArn(this, 'ImportedSecretsKey', props.secretsKey.keyArn),
    });

    const cognitoEnv = {
      CRM_DYNAMODB_TABLE_PREFIX: config.prefix,
      CRM_COGNITO_USER_POOL_ID: props.userPool.userPoolId,
      CRM_COGNITO_CLIENT_IDS: props.clientIds.join(','),
    };

    if (app.imageTag === 'unset') {
      Annotations.of(this).addWarningV2('ledgerline:imageTagUnset', 'imageTag is "unset": pass -c imageTag=<tag pushed to ECR> to deploy (synth and tests only need the default).');
    }

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENHANCED,
    });

    const service = (name: 'command' | 'query'): ecs.FargateService => {
      const title = `${name}-api`;
      const task = new ecs.FargateTaskDefinition(this, `${name}Task`, {
        cpu: 512,
        memoryLimitMiB: 1024,
        // The images are built on x86_64 runners (see the Dockerfile).
        runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      });
      const logGroup = newLogGroup(this, `${name}Logs`, props.logsKey, config.logRetentionDays, logGroupName(config.name, `ecs/${title}`));
      const linuxParameters = new ecs.LinuxParameters(this, `${name}Linux`, { initProcessEnabled: true });
      // Non-root, read-only root, no capabilities: nothing in the container can escalate.
      linuxParameters.dropCapabilities(ecs.Capability.ALL);
      task.addContainer('app', {
        containerName: title,
        image: ecs.ContainerImage.fromEcrRepository(ecr.Repository.fromRepositoryName(this, `${name}Repo`, REPOSITORIES[name]), app.imageTag),
        user: CONTAINER_USER,
        readonlyRootFilesystem: true,
        privileged: false,
        linuxParameters,
        portMappings: [{ containerPort: SERVICE_PORT }],
        environment: {
          ...cognitoEnv,
          CRM_ADDR: `0.0.0.0:${SERVICE_PORT}`,
          AWS_REGION: this.region,
          CRM_READ_DATABASE_URL: databaseUrl(props.cluster.clusterEndpoint.hostname),
          CRM_DATA_KEY_KMS_KEY: props.personalDataKey.keyArn,
          ...(name === 'query' ? { CRM_DIGEST_KMS_KEY: props.digestKey.keyArn, CRM_DIGEST_BUCKET: props.digestBucket.bucketName } : {}),
        },
        secrets: { PGPASSWORD: ecs.Secret.fromSecretsManager(databaseSecret, 'password') },
        logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: title, mode: ecs.AwsLogDriverMode.NON_BLOCKING }),
        stopTimeout: Duration.seconds(30),
        // The binary checks its own /health/ready (the distroless image has no shell or
        // curl): ECS replaces a task that fails it, as the target group's check does.
        healthCheck: {
          command: ['CMD', '/app/service', 'health'],
          interval: Duration.seconds(15),
          timeout: Duration.seconds(5),
          retries: 3,
          startPeriod: Duration.seconds(30),
        },
      });
      const svc = new ecs.FargateService(this, `${name}Service`, {
        cluster: this.cluster,
        taskDefinition: task,
        desiredCount: config.minTasks,
        minHealthyPercent: 100,
        maxHealthyPercent: 200,
        circuitBreaker: { enable: true, rollback: true },
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [servicesSg],
        assignPublicIp: false,
        enableExecuteCommand: false,
        platformVersion: ecs.FargatePlatformVersion.LATEST,
        healthCheckGracePeriod: Duration.seconds(60),
        propagateTags: ecs.PropagatedTagSource.SERVICE,
      });
      return svc;
    };
    this.commandService = service('command');
    this.queryService = service('query');

    // Least privilege per service: commands append; queries read (audit reads go to DynamoDB).
    for (const role of ['events', 'snapshots', 'idempotency']) tables[role].grantReadWriteData(this.commandService.taskDefinition.taskRole);
    for (const role of ['events', 'snapshots', 'ledger']) tables[role].grantReadData(this.queryService.taskDefinition.taskRole);
    // Clients' personal data: the command service and mail seal it (and so make data
    // keys), the query service only opens it.
    const personalDataKey = kms.Key.fromKeyArn(this, 'ImportedPersonalDataKey', props.personalDataKey.keyArn);
    personalDataKey.grantEncryptDecrypt(this.commandService.taskDefinition.taskRole);
    personalDataKey.grantDecrypt(this.queryService.taskDefinition.taskRole);
    tables.idempotency.grantReadData(this.queryService.taskDefinition.taskRole);
    // The query service signs digests (no one else may) and publishes them; Object Lock,
    // not IAM, keeps them from being rewritten.
    props.digestKey.grant(this.queryService.taskDefinition.taskRole, 'kms:Sign', 'kms:GetPublicKey');
    const queryRole = this.queryService.taskDefinition.taskRole;
    queryRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:GetObject'], resources: [props.digestBucket.arnForObjects('digests/*')] }),
    );
    queryRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.digestBucket.bucketArn], conditions: { StringLike: { 's3:prefix': 'digests/*' } } }),
    );
    suppress(this.queryService.taskDefinition, [
      {
        id: 'AwsSolutions-IAM5',
        reason: 'The query service publishes and reads the digests, one object each under digests/ (S3 Object Lock keeps each from being rewritten).',
        appliesTo: [{ regex: '/^Resource::.*\\/digests\\/\\*$/g' }],
      },
    ]);
    const poolReads = ['cognito-idp:ListUsers', 'cognito-idp:AdminGetUser', 'cognito-idp:AdminListGroupsForUser'];
    this.commandService.taskDefinition.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [
          ...poolReads,
          'cognito-idp:AdminCreateUser',
          'cognito-idp:AdminSetUserPassword',
          'cognito-idp:AdminAddUserToGroup',
          'cognito-idp:AdminRemoveUserFromGroup',
          'cognito-idp:AdminEnableUser',
          'cognito-idp:AdminDisableUser',
          'cognito-idp:AdminDeleteUser',
          'cognito-idp:AdminUserGlobalSignOut',
        ],
        resources: [props.userPool.userPoolArn],
      }),
    );
    this.queryService.taskDefinition.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: poolReads, resources: [props.userPool.userPoolArn] }));

    // The mail Lambda, behind the ALB.
    this.mail = new RustFunction(this, 'Mail', {
      app,
      packageName: 'mail-lambda',
      description: 'POST /v1/mail: drafts with Bedrock, sends with SES',
      vpc: props.vpc,
      securityGroup: sg('LambdaSg', props.lambdaSgId),
      logsKey: props.logsKey,
      environment: {
        ...cognitoEnv,
        CRM_READ_DATABASE_URL: databaseUrl(props.proxy.endpoint),
        CRM_READ_DATABASE_SECRET_ARN: props.databaseSecret.secretArn,
        CRM_MAIL_FROM: config.mailFrom,
        CRM_DATA_KEY_KMS_KEY: props.personalDataKey.keyArn,
        CRM_MAIL_PROVIDER: 'bedrock',
        CRM_MAIL_MODEL: config.mailModel,
      },
      timeout: Duration.seconds(60),
      memorySize: 512,
      reservedConcurrency: 20,
    }).fn;
    for (const role of ['events', 'snapshots', 'idempotency']) tables[role].grantReadWriteData(this.mail);
    kms.Key.fromKeyArn(this, 'MailPersonalDataKey', props.personalDataKey.keyArn).grantEncryptDecrypt(this.mail);
    grantSecretRead(this.mail, props.databaseSecret, props.secretsKey);
    this.mail.addToRolePolicy(new iam.PolicyStatement({ actions: poolReads, resources: [props.userPool.userPoolArn] }));
    this.mail.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['bedrock:InvokeModel'],
        resources: [
          `arn:${this.partition}:bedrock:${this.region}::foundation-model/${config.mailModel}`,
          `arn:${this.partition}:bedrock:${this.region}:${this.account}:inference-profile/${config.mailModel}`,
        ],
      }),
    );
    const mailDomain = config.mailFrom.split('@')[1];
    this.mail.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ses:SendEmail'],
        resources: [
          `arn:${this.partition}:ses:${this.region}:${this.account}:identity/${config.mailFrom}`,
          `arn:${this.partition}:ses:${this.region}:${this.account}:identity/${mailDomain}`,
        ],
      }),
    );

    // The ALB: HTTPS only (HTTP redirects), routing by path and method, 404 for the rest.
    const accessLogs = newLogBucket(this, 'AlbAccessLogs', { retentionDays: config.logRetentionDays });
    this.alb = new elbv2.ApplicationLoadBalancer(this, 'Alb', {
      vpc: props.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroup: albSg,
      dropInvalidHeaderFields: true,
      deletionProtection: true,
      http2Enabled: true,
      idleTimeout: Duration.seconds(60),
    });
    this.alb.logAccessLogs(accessLogs, 'alb');

    const notFound = elbv2.ListenerAction.fixedResponse(404, { contentType: 'application/problem+json', messageBody: '{"type":"/problems/not-found","status":404}' });
    this.alb.addListener('Http', {
      port: 80,
      protocol: elbv2.ApplicationProtocol.HTTP,
      open: false,
      defaultAction: elbv2.ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
    });
    const https = this.alb.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      open: false,
      certificates: [elbv2.ListenerCertificate.fromArn(config.albCertificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      defaultAction: notFound,
    });

    const targets = (tid: string, svc: ecs.FargateService): elbv2.ApplicationTargetGroup =>
      new elbv2.ApplicationTargetGroup(this, tid, {
        vpc: props.vpc,
        port: SERVICE_PORT,
        protocol: elbv2.ApplicationProtocol.HTTP,
        targetType: elbv2.TargetType.IP,
        targets: [svc],
        deregistrationDelay: Duration.seconds(30),
        healthCheck: { path: READY_PATH, healthyHttpCodes: '200', interval: Duration.seconds(15), healthyThresholdCount: 2, unhealthyThresholdCount: 3 },
      });
    this.commandTargets = targets('CommandTargets', this.commandService);
    this.queryTargets = targets('QueryTargets', this.queryService);
    const mailTargetGroupName = `${config.prefix}mail`;
    const mailTargets = new elbv2.ApplicationTargetGroup(this, 'MailTargets', {
      targetGroupName: mailTargetGroupName,
      targetType: elbv2.TargetType.LAMBDA,
      targets: [new MailTarget(this.mail, `arn:${this.partition}:elasticloadbalancing:${this.region}:${this.account}:targetgroup/${mailTargetGroupName}/*`)],
    });

    // The listener rules are topology.json's (aws_stack::routes), which the local front
    // door also routes by: mail to the Lambda, a transfer's progress to the command
    // service (it drives transfers), a rebuild to the query service (which explains that
    // in AWS `crm aws rebuild` does it), reads to the query service, the rest to the
    // command service, and the operators' /metrics and /health/* nowhere.
    const actions: Record<RouteSpec['target'], elbv2.ListenerAction> = {
      commands: elbv2.ListenerAction.forward([this.commandTargets]),
      queries: elbv2.ListenerAction.forward([this.queryTargets]),
      mail: elbv2.ListenerAction.forward([mailTargets]),
      notFound,
    };
    for (const route of props.topology.routes) {
      const conditions = [elbv2.ListenerCondition.pathPatterns(route.paths)];
      if (route.methods.length > 0) conditions.unshift(elbv2.ListenerCondition.httpRequestMethods(route.methods));
      https.addAction(route.name, { priority: route.priority, conditions, action: actions[route.target] });
    }

    for (const [svc, tg] of [
      [this.commandService, this.commandTargets],
      [this.queryService, this.queryTargets],
    ] as const) {
      const scaling = svc.autoScaleTaskCount({ minCapacity: config.minTasks, maxCapacity: config.maxTasks });
      scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60, scaleInCooldown: Duration.minutes(5), scaleOutCooldown: Duration.minutes(1) });
      scaling.scaleOnRequestCount('Requests', { requestsPerTarget: 500, targetGroup: tg, scaleInCooldown: Duration.minutes(5), scaleOutCooldown: Duration.minutes(1) });
    }

    const waf = new WebAcl(this, 'Waf', {
      scope: 'REGIONAL',
      name: `${config.prefix}alb`,
      rateLimit: config.wafRateLimit,
      logsKey: props.logsKey,
      logRetentionDays: config.logRetentionDays,
    });
    new wafv2.CfnWebACLAssociation(this, 'WafAlb', { resourceArn: this.alb.loadBalancerArn, webAclArn: waf.acl.attrArn });

    for (const svc of [this.commandService, this.queryService]) {
      suppress(svc.taskDefinition, [
        {
          id: 'AwsSolutions-IAM5',
          reason: 'DynamoDB grants include the tables\' indexes (<table ARN>/index/*) as CDK grants them; the tables have none today.',
          appliesTo: [{ regex: '/^Resource::.*\\/index\\/\\*$/g' }],
        },
        { id: 'AwsSolutions-IAM5', reason: 'ecr:GetAuthorizationToken accepts no resource ARN.', appliesTo: ['Resource::*'] },
        {
          id: 'AwsSolutions-IAM5',
          reason: "CDK's encrypt grants on our customer-managed keys (kms:GenerateDataKey*, kms:ReEncrypt*); the resource is the key's ARN.",
          appliesTo: ['Action::kms:GenerateDataKey*', 'Action::kms:ReEncrypt*'],
        },
        { id: 'AwsSolutions-ECS2', reason: 'The environment holds names, URLs and ids only; the database password is injected as a secret (PGPASSWORD).' },
      ]);
    }
    suppress(this.mail, [
      {
        id: 'AwsSolutions-IAM5',
        reason: 'DynamoDB grants include the tables\' indexes (<table ARN>/index/*) as CDK grants them; the tables have none today.',
        appliesTo: [{ regex: '/^Resource::.*\\/index\\/\\*$/g' }],
      },
    ]);

    new CfnOutput(this, 'AlbDnsName', { value: this.alb.loadBalancerDnsName });
    new CfnOutput(this, 'ApiUrl', { value: `https://${config.apiOriginDomain}` });
    new CfnOutput(this, 'ClusterName', { value: this.cluster.clusterName });
    new CfnOutput(this, 'CommandServiceName', { value: this.commandService.serviceName });
    new CfnOutput(this, 'QueryServiceName', { value: this.queryService.serviceName });
  }
}

/**
 * The mail Lambda as a target, invocable only by its own target group. (CDK's LambdaTarget
 * grants elasticloadbalancing.amazonaws.com without a source; the group's ARN cannot be
 * referenced before it exists, so its name pattern is.)
 */
class MailTarget implements elbv2.IApplicationLoadBalancerTarget {
  constructor(
    private readonly fn: lambda.Function,
    private readonly sourceArn: string,
  ) {}

  attachToApplicationTargetGroup(targetGroup: elbv2.IApplicationTargetGroup): elbv2.LoadBalancerTargetProps {
    this.fn.addPermission('AlbInvoke', {
      principal: new iam.ServicePrincipal('elasticloadbalancing.amazonaws.com'),
      action: 'lambda:InvokeFunction',
      sourceArn: this.sourceArn,
    });
    // ELB checks the permission when it registers the target.
    targetGroup.node.addDependency(this.fn.node.findChild('AlbInvoke'));
    return { targetType: elbv2.TargetType.LAMBDA, targetJson: { id: this.fn.functionArn } };
  }
}
