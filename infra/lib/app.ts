// Wires the stacks of one environment together; bin/app.ts and the tests both call this.
import * as path from 'node:path';
import { App, Stack, Tags } from 'aws-cdk-lib';
import { BootstrapStack } from './bootstrap-stack';
import { AppConfig, EDGE_REGION, loadConfig } from './config';
import { DataStack } from './data-stack';
import { EdgeStack } from './edge-stack';
import { EventsStack } from './events-stack';
import { IdentityStack } from './identity-stack';
import { NetworkStack } from './network-stack';
import { SecurityStack } from './security-stack';
import { ServicesStack } from './services-stack';
import { Topology, loadTopology } from './topology';

export interface LedgerlineStacks {
  readonly config: AppConfig;
  readonly topology: Topology;
  readonly bootstrap: BootstrapStack;
  readonly network: NetworkStack;
  readonly data: DataStack;
  readonly identity: IdentityStack;
  readonly events: EventsStack;
  readonly services: ServicesStack;
  readonly edge: EdgeStack;
  readonly security: SecurityStack;
  readonly all: Stack[];
}

/** `topologyOverride` is for tests that prove every name follows topology.json. */
export function buildApp(app: App, infraDir: string, topologyOverride?: Topology): LedgerlineStacks {
  const config = loadConfig(app.node, infraDir);
  const topology = topologyOverride ?? loadTopology(path.join(infraDir, 'topology.json'));
  const cfg = config.env;
  const env = { account: cfg.account, region: cfg.region };
  const name = (part: string): string => `Ledgerline-${cfg.name}-${part}`;

  const bootstrap = new BootstrapStack(app, 'Ledgerline-Bootstrap', { env, app: config, description: 'Ledgerline: GitHub OIDC deploy role and ECR repositories (once per account)' });
  const network = new NetworkStack(app, name('Network'), { env, config: cfg, description: 'Ledgerline: VPC, endpoints, flow logs, security groups, logs key' });
  const data = new DataStack(app, name('Data'), {
    env,
    config: cfg,
    topology,
    vpc: network.vpc,
    logsKey: network.logsKey,
    databaseSgId: network.databaseSg.securityGroupId,
    proxySgId: network.proxySg.securityGroupId,
    rotationSgId: network.rotationSg.securityGroupId,
    description: 'Ledgerline: DynamoDB event store, Aurora read models, RDS Proxy, secrets, the ledger digests key and bucket',
  });
  const identity = new IdentityStack(app, name('Identity'), {
    env,
    app: config,
    config: cfg,
    topology,
    logsKey: network.logsKey,
    vpc: network.vpc,
    lambdaSgId: network.lambdaSg.securityGroupId,
    proxy: data.proxy,
    databaseSecret: data.databaseSecret,
    secretsKey: data.secretsKey,
    description: 'Ledgerline: Cognito staff pool and clients, the sign-in trigger',
  });
  const events = new EventsStack(app, name('Events'), {
    env,
    app: config,
    topology,
    vpc: network.vpc,
    logsKey: network.logsKey,
    lambdaSgId: network.lambdaSg.securityGroupId,
    sftpSgId: network.sftpSg.securityGroupId,
    tables: data.tables,
    tablesKey: data.tablesKey,
    personalDataKey: data.personalDataKey,
    proxy: data.proxy,
    databaseSecret: data.databaseSecret,
    sftpSecret: data.sftpSecret,
    secretsKey: data.secretsKey,
    sftpClientId: identity.sftpClient.userPoolClientId,
    tokenUrl: identity.tokenUrl,
    userPool: identity.userPool,
    description: 'Ledgerline: relay, bus, rules, queues, projector, SFTP worker and sign-in audit',
  });
  const services = new ServicesStack(app, name('Services'), {
    env,
    app: config,
    topology,
    vpc: network.vpc,
    logsKey: network.logsKey,
    albSgId: network.albSg.securityGroupId,
    servicesSgId: network.servicesSg.securityGroupId,
    lambdaSgId: network.lambdaSg.securityGroupId,
    tables: data.tables,
    tablesKey: data.tablesKey,
    cluster: data.cluster,
    proxy: data.proxy,
    databaseSecret: data.databaseSecret,
    secretsKey: data.secretsKey,
    userPool: identity.userPool,
    clientIds: [identity.uiClient.userPoolClientId, identity.sftpClient.userPoolClientId, identity.smokeClient.userPoolClientId],
    digestKey: data.digestKey,
    digestBucket: data.digestBucket,
    personalDataKey: data.personalDataKey,
    description: 'Ledgerline: command-api and query-api on Fargate, mail Lambda, ALB, regional WAF',
  });
  // CLOUDFRONT WebACLs exist only in us-east-1; the Edge stack takes nothing from the others.
  const edge = new EdgeStack(app, name('Edge'), { env: { account: cfg.account, region: EDGE_REGION }, config: cfg, topology, description: 'Ledgerline: UI bucket, CloudFront, edge WAF (us-east-1)' });
  const security = new SecurityStack(app, name('Security'), {
    env,
    config: cfg,
    logsKey: network.logsKey,
    dataKeys: [data.tablesKey, data.databaseKey, data.secretsKey, events.queuesKey, data.personalDataKey],
    tables: Object.values(data.tables),
    database: data.cluster,
    databaseClusterIdentifier: `${cfg.prefix}read-models`,
    databaseSecret: data.databaseSecret,
    deadLetterQueues: {
      ...Object.fromEntries(Object.entries(events.deadLetterQueues).map(([role, q]) => [role, q])),
      streamFailures: events.streamFailures,
      deliveryFailures: events.deliveryFailures,
      scheduleFailures: events.scheduleFailures,
    },
    projectorQueue: events.queues.projector,
    functions: { relay: events.relay, projector: events.projector, sftp: events.sftp, mail: services.mail, signIn: identity.signInTrigger, signInAudit: events.signInAudit },
    relay: events.relay,
    alb: services.alb,
    ecsCluster: services.cluster,
    services: { command: services.commandService, query: services.queryService },
    description: 'Ledgerline: CloudTrail, GuardDuty, alarms, dashboard, operator and DBA roles',
  });

  const all = [bootstrap, network, data, identity, events, services, edge, security];
  for (const stack of all) {
    Tags.of(stack).add('application', 'ledgerline');
    if (stack !== bootstrap) Tags.of(stack).add('environment', cfg.name);
  }
  return { config, topology, bootstrap, network, data, identity, events, services, edge, security, all };
}
