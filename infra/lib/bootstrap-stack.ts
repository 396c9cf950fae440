// Deployed once per account by an administrator: GitHub's OIDC provider, the role the
// deploy workflow assumes (trusted only for this repository's main branch and its
// environments), and the ECR repositories the services' images are pushed to. When
// staging and production share an account, they share these repositories, so one image
// (same digest, immutable tag) is promoted from staging to production.
import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { newKey, suppress } from './common';
import { AppConfig, EDGE_REGION } from './config';
import { REPOSITORIES } from './services-stack';

export interface BootstrapStackProps extends StackProps {
  readonly app: AppConfig;
}

export const GITHUB_OIDC_HOST = 'token.actions.githubusercontent.com';

/** The OIDC subjects the deploy role trusts. */
export function deploySubjects(repository: string, environments: string[]): string[] {
  return [`repo:${repository}:ref:refs/heads/main`, ...environments.map((e) => `repo:${repository}:environment:${e}`)];
}

export class BootstrapStack extends Stack {
  readonly deployRole: iam.Role;
  readonly repositories: ecr.Repository[] = [];

  constructor(scope: Construct, id: string, props: BootstrapStackProps) {
    super(scope, id, props);
    const { app } = props;
    // The environments that live in this account.
    const here = app.environments.filter((e) => e.account === this.account);

    const provider = new iam.OidcProviderNative(this, 'GitHubOidc', {
      url: `https://${GITHUB_OIDC_HOST}`,
      clientIds: ['sts.amazonaws.com'],
    });

    this.deployRole = new iam.Role(this, 'DeployRole', {
      description: `GitHub Actions deploys of ${app.githubRepository} (main and its environments)`,
      maxSessionDuration: Duration.hours(2),
      assumedBy: new iam.WebIdentityPrincipal(provider.oidcProviderArn, {
        StringEquals: { [`${GITHUB_OIDC_HOST}:aud`]: 'sts.amazonaws.com' },
        'ForAnyValue:StringEquals': { [`${GITHUB_OIDC_HOST}:sub`]: deploySubjects(app.githubRepository, here.map((e) => e.name)) },
      }),
    });

    const key = newKey(this, 'EcrKey', 'Ledgerline: ECR images');
    for (const [name, repositoryName] of Object.entries(REPOSITORIES)) {
      const repo = new ecr.Repository(this, `${name}Repository`, {
        repositoryName,
        imageScanOnPush: true,
        imageTagMutability: ecr.TagMutability.IMMUTABLE,
        encryption: ecr.RepositoryEncryption.KMS,
        encryptionKey: key as kms.IKey,
        removalPolicy: RemovalPolicy.RETAIN,
        lifecycleRules: [
          { description: 'Drop untagged layers after a week', tagStatus: ecr.TagStatus.UNTAGGED, maxImageAge: Duration.days(7), rulePriority: 1 },
          { description: 'Keep the last 100 tagged images', tagStatus: ecr.TagStatus.ANY, maxImageCount: 100, rulePriority: 2 },
        ],
      });
      repo.grantPullPush(this.deployRole);
      this.repositories.push(repo);
    }

    // CDK's own bootstrap roles (qualifier hnb659fds) in the region and in us-east-1 (Edge).
    const regions = [...new Set([...here.map((e) => e.region), EDGE_REGION])];
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'AssumeCdkRoles',
        actions: ['sts:AssumeRole'],
        resources: regions.map((r) => `arn:${this.partition}:iam::${this.account}:role/cdk-hnb659fds-*-${this.account}-${r}`),
      }),
    );
    const uiBuckets = [...new Set(here.map((e) => `arn:${this.partition}:s3:::${e.prefix}ui-${this.account}-*`))];
    this.deployRole.addToPolicy(new iam.PolicyStatement({ sid: 'ListUi', actions: ['s3:ListBucket'], resources: uiBuckets }));
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({ sid: 'SyncUi', actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], resources: uiBuckets.map((b) => `${b}/*`) }),
    );
    // The UI bucket's key (created by the Edge stack) lets S3 use it on behalf of the role.
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'UiKeyThroughS3',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [`arn:${this.partition}:kms:${EDGE_REGION}:${this.account}:key/*`],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${EDGE_REGION}.amazonaws.com` } },
      }),
    );
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Invalidate',
        actions: ['cloudfront:CreateInvalidation', 'cloudfront:GetInvalidation'],
        resources: [`arn:${this.partition}:cloudfront::${this.account}:distribution/*`],
      }),
    );
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadOutputs',
        actions: ['cloudformation:DescribeStacks'],
        resources: regions.map((r) => `arn:${this.partition}:cloudformation:${r}:${this.account}:stack/Ledgerline-*/*`),
      }),
    );
    // The smoke test after each deploy: a sign-in as the dedicated smoke-test auditor, and
    // waiting for the ECS services to settle.
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'SmokeSignIn',
        actions: ['cognito-idp:AdminInitiateAuth', 'cognito-idp:AdminRespondToAuthChallenge'],
        resources: regions.map((r) => `arn:${this.partition}:cognito-idp:${r}:${this.account}:userpool/*`),
      }),
    );
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WaitForServices',
        actions: ['ecs:DescribeServices'],
        resources: regions.map((r) => `arn:${this.partition}:ecs:${r}:${this.account}:service/*/*`),
      }),
    );
    suppress(this.deployRole, [
      { id: 'AwsSolutions-IAM5', reason: 'ecr:GetAuthorizationToken accepts no resource ARN (CDK adds it with the pull/push grant).', appliesTo: ['Resource::*'] },
      {
        id: 'AwsSolutions-IAM5',
        reason: 'Names created later by other stacks: CDK bootstrap roles, the UI bucket <prefix>ui-<account>-<env> and its objects, the UI key (S3 only), the distributions, Ledgerline-* stacks, the user pools (smoke sign-in) and ECS services (waiting for them to settle).',
        appliesTo: [{ regex: '/^Resource::arn:(aws[a-z-]*|<AWS::Partition>):(iam|s3|kms|cloudfront|cloudformation|cognito-idp|ecs):.*\\*.*$/g' }],
      },
    ]);

    new CfnOutput(this, 'DeployRoleArn', { value: this.deployRole.roleArn });
    new CfnOutput(this, 'CommandApiRepositoryUri', { value: this.repositories[0].repositoryUri });
    new CfnOutput(this, 'QueryApiRepositoryUri', { value: this.repositories[1].repositoryUri });
  }
}
