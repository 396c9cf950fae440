// The VPC, its endpoints, flow logs and security groups; and the logs key that every
// stack's log groups use (this stack is deployed first).
import { Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { logGroupName, newLogGroup, newLogsKey, skipCheckov, suppress } from './common';
import { EnvironmentConfig } from './config';

export interface NetworkStackProps extends StackProps {
  readonly config: EnvironmentConfig;
}

export const POSTGRES_PORT = 5432;
export const SERVICE_PORT = 8080;

/** The VPC's range (a literal, so cdk-nag can check the rules that use it). */
export const VPC_CIDR = '10.40.0.0/16';

export class NetworkStack extends Stack {
  private readonly zones: string[];
  readonly vpc: ec2.Vpc;
  readonly logsKey: kms.Key;
  readonly albSg: ec2.SecurityGroup;
  readonly servicesSg: ec2.SecurityGroup;
  readonly lambdaSg: ec2.SecurityGroup;
  readonly sftpSg: ec2.SecurityGroup;
  readonly proxySg: ec2.SecurityGroup;
  readonly databaseSg: ec2.SecurityGroup;
  readonly rotationSg: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkStackProps) {
    super(scope, id, props);
    const config = props.config;
    this.zones = config.availabilityZones;

    this.logsKey = newLogsKey(this, 'LogsKey', `Ledgerline ${config.name}: CloudWatch Logs`);

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(VPC_CIDR),
      // Explicit zones: synth needs no account lookup.
      availabilityZones: config.availabilityZones,
      natGateways: config.natGateways,
      subnetConfiguration: [
        // The ALB and the NAT gateways; nothing else gets a public address.
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        // ECS tasks and Lambdas: AWS APIs via endpoints, Cognito's JWKS and the SFTP host via NAT.
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        // Aurora and RDS Proxy: no route out at all.
        { name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: {
        DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      },
    });

    const flowLogs = newLogGroup(this, 'FlowLogs', this.logsKey, config.logRetentionDays, logGroupName(config.name, 'vpc-flow-logs'));
    const flowLogRole = new iam.Role(this, 'FlowLogRole', { assumedBy: new iam.ServicePrincipal('vpc-flow-logs.amazonaws.com') });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs, flowLogRole),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });

    const endpointSg = this.sg('Endpoints', 'Interface endpoints: HTTPS from inside the VPC');
    endpointSg.addIngressRule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(443), 'HTTPS from the VPC');
    const endpoints: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
      Sqs: ec2.InterfaceVpcEndpointAwsService.SQS,
      EventBridge: ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
      SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      Kms: ec2.InterfaceVpcEndpointAwsService.KMS,
      EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
      Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
      Sts: ec2.InterfaceVpcEndpointAwsService.STS,
    };
    for (const [name, service] of Object.entries(endpoints)) {
      this.vpc.addInterfaceEndpoint(name, {
        service,
        privateDnsEnabled: true,
        subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [endpointSg],
        open: false,
      });
    }

    // Security groups for every tier, here so that cross-tier rules need no cross-stack cycle.
    const anywhere = ec2.Peer.anyIpv4();
    this.albSg = this.sg('Alb', 'Internet-facing ALB');
    this.albSg.addIngressRule(anywhere, ec2.Port.tcp(443), 'HTTPS from CloudFront and API clients');
    this.albSg.addIngressRule(anywhere, ec2.Port.tcp(80), 'HTTP, answered only with a redirect to HTTPS');
    this.servicesSg = this.sg('Services', 'command-api and query-api tasks');
    this.lambdaSg = this.sg('Lambdas', 'relay, projector and mail Lambdas');
    this.sftpSg = this.sg('Sftp', 'SFTP worker Lambda');
    this.proxySg = this.sg('DbProxy', 'RDS Proxy in front of Aurora for the Lambdas');
    this.databaseSg = this.sg('Database', 'Aurora PostgreSQL');
    this.rotationSg = this.sg('Rotation', 'Secrets Manager hosted rotation of the Aurora secret');

    const pg = ec2.Port.tcp(POSTGRES_PORT);
    this.albSg.addEgressRule(this.servicesSg, ec2.Port.tcp(SERVICE_PORT), 'To the services');
    this.servicesSg.addIngressRule(this.albSg, ec2.Port.tcp(SERVICE_PORT), 'From the ALB');
    for (const client of [this.servicesSg, this.lambdaSg, this.sftpSg, this.rotationSg]) {
      client.addEgressRule(anywhere, ec2.Port.tcp(443), 'AWS APIs (endpoints, NAT) and Cognito');
    }
    this.servicesSg.addEgressRule(this.databaseSg, pg, 'Aurora (the services connect directly)');
    this.rotationSg.addEgressRule(this.databaseSg, pg, 'Aurora (password rotation)');
    for (const lambda of [this.lambdaSg, this.sftpSg]) {
      lambda.addEgressRule(this.proxySg, pg, 'RDS Proxy');
      this.proxySg.addIngressRule(lambda, pg, 'From the Lambdas');
    }
    this.sftpSg.addEgressRule(anywhere, ec2.Port.tcp(config.sftp.port), "The core banking system's SFTP server");
    this.proxySg.addEgressRule(this.databaseSg, pg, 'To Aurora');
    this.databaseSg.addIngressRule(this.servicesSg, pg, 'From the services');
    this.databaseSg.addIngressRule(this.proxySg, pg, 'From RDS Proxy (the Lambdas)');
    this.databaseSg.addIngressRule(this.rotationSg, pg, 'From the rotation Lambda');

    suppress(this.albSg, [
      { id: 'AwsSolutions-EC23', reason: 'Internet-facing API origin: 443 (and 80, redirect only) open to all, filtered by the WAF WebACL.' },
    ]);
    skipCheckov(this.albSg, [
      { id: 'CKV_AWS_260', comment: 'Port 80 is open only for the listener that redirects to HTTPS.' },
    ]);
  }

  /** The zones from context: CDK would otherwise look them up in the account. */
  override get availabilityZones(): string[] {
    return this.zones;
  }

  private sg(id: string, description: string): ec2.SecurityGroup {
    return new ec2.SecurityGroup(this, `${id}Sg`, { vpc: this.vpc, description, allowAllOutbound: false });
  }
}
