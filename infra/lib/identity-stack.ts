// Staff identity: the Cognito user pool (name, groups and password policy from
// topology.json), the UI's app client, the API's resource server, the SFTP worker's
// client-credentials client, the hosted domain, and the post-authentication trigger
// that puts each sign-in into the system log.
//
// MFA: Cognito cannot require MFA for some groups only. Every staff member of a bank
// reaches customer data, so MFA (TOTP) is REQUIRED for the whole pool, administrators
// included; threat protection (PLUS, full function) adds adaptive blocking on top.
import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { grantSecretRead, logGroupName, newLogGroup, suppress } from './common';
import { AppConfig, EnvironmentConfig } from './config';
import { databaseUrl } from './data-stack';
import { RustFunction } from './rust-function';
import { Topology, rebase } from './topology';

export interface IdentityStackProps extends StackProps {
  readonly app: AppConfig;
  readonly config: EnvironmentConfig;
  readonly topology: Topology;
  readonly logsKey: kms.IKey;
  /** For the sign-in trigger, which writes the system log in Aurora through RDS Proxy. */
  readonly vpc: ec2.IVpc;
  readonly lambdaSgId: string;
  readonly proxy: rds.IDatabaseProxy;
  readonly databaseSecret: secretsmanager.ISecret;
  readonly secretsKey: kms.IKey;
}

export const RESOURCE_SERVER = 'ledgerline-api';

export class IdentityStack extends Stack {
  readonly userPool: cognito.UserPool;
  readonly uiClient: cognito.UserPoolClient;
  readonly sftpClient: cognito.UserPoolClient;
  /** The deploy workflow's smoke test signs in through this one (ADMIN_USER_PASSWORD_AUTH needs IAM credentials). */
  readonly smokeClient: cognito.UserPoolClient;
  /** Cognito's post-authentication trigger: sign-ins to the system log. */
  readonly signInTrigger: import('aws-cdk-lib/aws-lambda').Function;
  readonly domain: cognito.UserPoolDomain;
  /** https://<prefix>.auth.<region>.amazoncognito.com */
  readonly domainUrl: string;
  /** The token endpoint the SFTP worker signs in at. */
  readonly tokenUrl: string;

  constructor(scope: Construct, id: string, props: IdentityStackProps) {
    super(scope, id, props);
    const { config, topology } = props;
    const spec = topology.userPool;
    const policy = spec.passwordPolicy;

    this.userPool = new cognito.UserPool(this, 'UserPool', {
      userPoolName: rebase(topology, config.prefix, spec.name),
      selfSignUpEnabled: false,
      signInAliases: { username: true },
      signInCaseSensitive: false,
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      // Cognito has no maximum length; the API enforces maximumLength when it sets passwords.
      passwordPolicy: {
        minLength: policy.minimumLength,
        requireLowercase: policy.requireLowercase,
        requireUppercase: policy.requireUppercase,
        requireDigits: policy.requireDigits,
        requireSymbols: policy.requireSymbols,
        tempPasswordValidity: Duration.days(policy.temporaryPasswordValidityDays),
      },
      accountRecovery: cognito.AccountRecovery.NONE,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Sign-ins to the system log, as `crm serve` records them: Cognito checks passwords,
    // so its post-authentication trigger tells the product (projections::sign_in). The
    // trigger never refuses a sign-in and answers within Cognito's 5 s.
    this.signInTrigger = new RustFunction(this, 'SignIns', {
      app: props.app,
      packageName: 'sign-in-lambda',
      description: 'Cognito post-authentication → system log',
      vpc: props.vpc,
      securityGroup: ec2.SecurityGroup.fromSecurityGroupId(this, 'LambdaSg', props.lambdaSgId, { mutable: false, allowAllOutbound: false }),
      logsKey: props.logsKey,
      environment: {
        CRM_READ_DATABASE_URL: databaseUrl(props.proxy.endpoint),
        CRM_READ_DATABASE_SECRET_ARN: props.databaseSecret.secretArn,
      },
      timeout: Duration.seconds(5),
      reservedConcurrency: 20,
      synchronousCaller: 'Invoked synchronously by Cognito during sign-in; it never fails (an unrecorded sign-in is logged), so there is nothing to dead-letter.',
    }).fn;
    grantSecretRead(this.signInTrigger, props.databaseSecret, props.secretsKey);
    // The role is the user's pool group. By pattern, not by the pool's ARN: the pool
    // names the function as its trigger, so naming the pool here would be a cycle.
    this.signInTrigger.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['cognito-idp:AdminListGroupsForUser'],
        resources: [`arn:${this.partition}:cognito-idp:${this.region}:${this.account}:userpool/*`],
      }),
    );
    this.userPool.addTrigger(cognito.UserPoolOperation.POST_AUTHENTICATION, this.signInTrigger);
    suppress(this.signInTrigger, [
      {
        id: 'AwsSolutions-IAM5',
        reason: 'AdminListGroupsForUser on the account\'s pools in this region: the pool names this function as its trigger, so its ARN cannot be named here (a cycle).',
        appliesTo: [{ regex: '/^Resource::arn:(aws[a-z-]*|<AWS::Partition>):cognito-idp:.*:userpool\\/\\*$/g' }],
      },
    ], true);

    suppress(this.userPool, [
      {
        id: 'AwsSolutions-COG1',
        reason: 'The password policy is the product\'s (topology.json): length over composition rules, as NIST SP 800-63B advises; the API also rejects common and personal passwords; MFA is required.',
      },
    ]);

    for (const group of spec.groups) {
      new cognito.UserPoolGroup(this, `Group-${group}`, { userPool: this.userPool, groupName: group });
    }

    const read = new cognito.ResourceServerScope({ scopeName: 'read', scopeDescription: 'Read the API' });
    const write = new cognito.ResourceServerScope({ scopeName: 'write', scopeDescription: 'Send commands to the API' });
    const server = this.userPool.addResourceServer('Api', { identifier: RESOURCE_SERVER, scopes: [read, write] });
    const apiScopes = [cognito.OAuthScope.resourceServer(server, read), cognito.OAuthScope.resourceServer(server, write)];

    this.uiClient = this.userPool.addClient('UiClient', {
      userPoolClientName: rebase(topology, config.prefix, spec.appClient),
      generateSecret: false,
      authFlows: { userSrp: true },
      oAuth: {
        // Authorization code; Cognito requires PKCE from public clients that send it.
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE, ...apiScopes],
        callbackUrls: [`https://${config.domainName}/callback`],
        logoutUrls: [`https://${config.domainName}/`],
      },
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      accessTokenValidity: Duration.minutes(15),
      idTokenValidity: Duration.minutes(15),
      refreshTokenValidity: Duration.hours(8),
    });

    this.sftpClient = this.userPool.addClient('SftpClient', {
      userPoolClientName: `${config.prefix}sftp-worker`,
      generateSecret: true,
      authFlows: {},
      oAuth: { flows: { clientCredentials: true }, scopes: apiScopes },
      preventUserExistenceErrors: true,
      accessTokenValidity: Duration.minutes(15),
    });

    // Server-side sign-in only (AdminInitiateAuth is an IAM-signed call, never reachable
    // with a password alone): the deploy workflow's smoke test, as a dedicated auditor.
    this.smokeClient = this.userPool.addClient('SmokeClient', {
      userPoolClientName: `${config.prefix}smoke-test`,
      generateSecret: false,
      authFlows: { adminUserPassword: true },
      // No OAuth at all (CDK would otherwise allow the implicit and code flows).
      disableOAuth: true,
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      accessTokenValidity: Duration.minutes(15),
      idTokenValidity: Duration.minutes(15),
      refreshTokenValidity: Duration.hours(1),
    });

    this.domain = this.userPool.addDomain('Domain', { cognitoDomain: { domainPrefix: config.cognitoDomainPrefix } });
    this.domainUrl = `https://${config.cognitoDomainPrefix}.auth.${this.region}.amazoncognito.com`;
    this.tokenUrl = `${this.domainUrl}/oauth2/token`;

    // Sign-in activity (threat protection's user auth events: every sign-in, passed or
    // failed, with its risk assessment) exported to a log group the operators read. The
    // product's system log gets the failures from the same histories through the sign-in
    // audit (Events stack, projections::sign_in_failures), the passes from the trigger.
    const signIns = newLogGroup(
      this,
      'SignInActivity',
      props.logsKey,
      config.logRetentionDays,
      // Under the product's prefix, so the operator role reads it.
      logGroupName(config.name, 'sign-in-activity'),
    );
    new cognito.CfnLogDeliveryConfiguration(this, 'SignInActivityExport', {
      userPoolId: this.userPool.userPoolId,
      logConfigurations: [
        { eventSource: 'userAuthEvents', logLevel: 'INFO', cloudWatchLogsConfiguration: { logGroupArn: signIns.logGroupArn } },
      ],
    });

    new CfnOutput(this, 'UserPoolId', { value: this.userPool.userPoolId });
    new CfnOutput(this, 'SignInLogGroup', { value: signIns.logGroupName });
    new CfnOutput(this, 'UiClientId', { value: this.uiClient.userPoolClientId });
    new CfnOutput(this, 'SftpClientId', { value: this.sftpClient.userPoolClientId });
    new CfnOutput(this, 'SmokeClientId', { value: this.smokeClient.userPoolClientId });
    new CfnOutput(this, 'CognitoDomainUrl', { value: this.domainUrl });
    new CfnOutput(this, 'Authority', { value: `https://cognito-idp.${this.region}.amazonaws.com/${this.userPool.userPoolId}` });
  }
}
