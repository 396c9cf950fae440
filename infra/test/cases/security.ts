// Cross-cutting checks over every stack: keys, logs, IAM, cdk-nag; and the Security,
// Network and Bootstrap stacks' own resources.
import * as assert from 'node:assert/strict';
import { it } from 'node:test';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { Synthesized, resources } from '../support';

type Props = Record<string, any>;

/**
 * Actions that may be granted on "*": none of them reads or writes data, and each
 * accepts no resource ARN. Anything else on "*" fails.
 */
const STAR_RESOURCE_ALLOWED: Record<string, string> = {
  'ecr:GetAuthorizationToken': 'registry login token; takes no resource',
  'xray:PutTraceSegments': 'trace upload for active tracing; takes no resource',
  'xray:PutTelemetryRecords': 'trace upload for active tracing; takes no resource',
  'dynamodb:ListStreams': 'the relay mapping lists stream ARNs (CDK grant); no data',
  'dynamodb:ListBackups': 'DBA lists backups; no data',
  'dynamodb:ListTables': 'DBA lists tables; no data',
};

const list = (v: unknown): any[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every statement of every identity policy in a template (inline, managed, role inline). */
function identityStatements(template: Props): { where: string; statement: Props }[] {
  const out: { where: string; statement: Props }[] = [];
  for (const [id, r] of Object.entries<Props>(template.Resources ?? {})) {
    const docs: Props[] = [];
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') docs.push(r.Properties.PolicyDocument);
    if (r.Type === 'AWS::IAM::Role') for (const p of list(r.Properties.Policies)) docs.push(p.PolicyDocument);
    for (const doc of docs) for (const statement of list(doc.Statement)) out.push({ where: id, statement });
  }
  return out;
}

export function securityCases(s: Synthesized): void {
  const t = () => s.template(s.security);

  it('rotates every customer-managed encryption key, in every stack', () => {
    let keys = 0;
    for (const stack of s.all) {
      for (const [id, r] of resources(s.template(stack), 'AWS::KMS::Key')) {
        // An asymmetric key cannot rotate by itself: the digest key is rotated by making a
        // new one and listing the old as retired (CRM_DIGEST_RETIRED_KMS_KEYS).
        if (r.Properties!.KeyUsage === 'SIGN_VERIFY') continue;
        keys++;
        assert.equal(r.Properties!.EnableKeyRotation, true, `${stack.stackName}/${id}`);
      }
    }
    assert.ok(keys >= 9, `expected a key per store, found ${keys}`);
  });

  it('gives every log group a retention from context and a KMS key, in every stack', () => {
    let groups = 0;
    for (const stack of s.all) {
      for (const [id, r] of resources(s.template(stack), 'AWS::Logs::LogGroup')) {
        groups++;
        assert.equal(r.Properties!.RetentionInDays, s.config.env.logRetentionDays, `${stack.stackName}/${id}`);
        assert.ok(r.Properties!.KmsKeyId, `${stack.stackName}/${id} is encrypted`);
      }
    }
    assert.ok(groups >= 10, `found ${groups} log groups`);
  });

  it('encrypts every bucket, blocks public access, enforces TLS, in every stack', () => {
    for (const stack of s.all) {
      const t2 = s.template(stack);
      const policies = resources(t2, 'AWS::S3::BucketPolicy').map(([, r]) => r.Properties!);
      for (const [id, r] of resources(t2, 'AWS::S3::Bucket')) {
        const p = r.Properties!;
        assert.ok(p.BucketEncryption.ServerSideEncryptionConfiguration.length > 0, id);
        assert.equal(p.PublicAccessBlockConfiguration.BlockPublicPolicy, true, id);
        assert.equal(p.VersioningConfiguration.Status, 'Enabled', id);
        assert.ok(p.LifecycleConfiguration.Rules.length > 0, id);
        const policy = policies.find((x) => x.Bucket.Ref === id);
        assert.ok(policy?.PolicyDocument.Statement.some((st: Props) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false'), `${id} enforces TLS`);
      }
    }
  });

  it('grants no "*" action and nothing but documented non-data actions on "*", in every stack', () => {
    const problems: string[] = [];
    for (const stack of s.all) {
      for (const { where, statement } of identityStatements(s.template(stack).toJSON())) {
        if (statement.Effect !== 'Allow') continue;
        const actions = list(statement.Action);
        for (const a of actions) if (a === '*' || /^[a-z0-9-]+:\*$/i.test(a)) problems.push(`${stack.stackName}/${where}: action ${a}`);
        if (list(statement.Resource).includes('*')) {
          for (const a of actions) if (!(a in STAR_RESOURCE_ALLOWED)) problems.push(`${stack.stackName}/${where}: ${a} on "*"`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('lets only the relay write the ledger table (the Merkle log); the query service reads it', () => {
    const writes = /^dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem|PartiQL(Insert|Update|Delete))$/;
    const reads = /^dynamodb:(GetItem|BatchGetItem|Query)$/;
    const [writers, readers]: [Set<string>, Set<string>] = [new Set(), new Set()];
    for (const stack of s.all) {
      const json = s.template(stack).toJSON();
      for (const { where, statement } of identityStatements(json)) {
        if (statement.Effect !== 'Allow' || !JSON.stringify(statement.Resource).includes('Tableledger')) continue;
        // The role's logical id: `Relay…` for the relay's, `queryTask…` for the query service's.
        const roles = JSON.stringify(json.Resources[where].Properties.Roles ?? []);
        const who = roles.match(/"Ref":"(Relay|queryTask|commandTask|Projector|Mail|Sftp)/)?.[1] ?? roles;
        if (list(statement.Action).some((a) => writes.test(a))) writers.add(who);
        if (list(statement.Action).some((a) => reads.test(a))) readers.add(who);
      }
    }
    assert.deepEqual([...writers], ['Relay']);
    assert.deepEqual([...readers].sort(), ['Relay', 'queryTask']);
  });

  it('lets only what seals clients\' personal data encrypt under its key, and only what reads it decrypt', () => {
    const [encrypting, decrypting]: [Set<string>, Set<string>] = [new Set(), new Set()];
    for (const stack of s.all) {
      const json = s.template(stack).toJSON();
      for (const { where, statement } of identityStatements(json)) {
        if (statement.Effect !== 'Allow' || !JSON.stringify(statement.Resource).includes('PersonalDataKey')) continue;
        const roles = JSON.stringify(json.Resources[where].Properties.Roles ?? []);
        const who = roles.match(/"Ref":"(Relay|queryTask|commandTask|Projector|Mail|Sftp)/)?.[1] ?? roles;
        if (list(statement.Action).some((a) => a.startsWith('kms:Encrypt'))) encrypting.add(who);
        if (list(statement.Action).includes('kms:Decrypt')) decrypting.add(who);
      }
    }
    assert.deepEqual([...encrypting].sort(), ['Mail', 'commandTask']);
    assert.deepEqual([...decrypting].sort(), ['Mail', 'Projector', 'Sftp', 'commandTask', 'queryTask']);
  });

  it('denies the database administrators the data keys, data reads and the database secret', () => {
    const roleId = Object.keys(t().findResources('AWS::IAM::Role')).find((id) => id.startsWith('DatabaseAdministratorRole'))!;
    const statements = identityStatements(t().toJSON())
      .filter(({ where, statement }) => statement && where !== roleId && JSON.stringify(t().toJSON().Resources[where].Properties.Roles ?? []).includes(roleId))
      .map((x) => x.statement);
    const denies = statements.filter((st) => st.Effect === 'Deny');
    const denied = (action: string): Props | undefined => denies.find((st) => list(st.Action).includes(action));
    const keyDeny = denied('kms:Decrypt')!;
    assert.ok(keyDeny && list(denied('kms:GenerateDataKey*')?.Action).length);
    assert.equal(list(keyDeny.Resource).length, 5, 'tables, database, secrets, queues and personal-data keys');
    for (const a of ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:PartiQLSelect', 'rds-data:ExecuteStatement', 'secretsmanager:GetSecretValue']) {
      assert.ok(denied(a), `${a} denied`);
    }
    const allowed = statements.filter((st) => st.Effect === 'Allow').flatMap((st) => list(st.Action));
    for (const a of ['rds:ModifyDBCluster', 'rds:CreateDBClusterSnapshot', 'dynamodb:UpdateTable', 'dynamodb:CreateBackup', 'dynamodb:RestoreTableToPointInTime', 'dynamodb:UpdateContinuousBackups', 'dynamodb:DescribeTable']) {
      assert.ok(allowed.includes(a), `${a} allowed`);
    }
    for (const a of allowed) assert.doesNotMatch(a, /^dynamodb:(GetItem|BatchGetItem|Query|Scan|PartiQL)/);
  });

  it('lets operators read the product logs only, decrypting through CloudWatch Logs only', () => {
    const roleId = Object.keys(t().findResources('AWS::IAM::Role')).find((id) => id.startsWith('OperatorRole'))!;
    const statements = identityStatements(t().toJSON())
      .filter(({ where }) => JSON.stringify(t().toJSON().Resources[where].Properties.Roles ?? []).includes(roleId))
      .map((x) => x.statement);
    for (const st of statements) {
      for (const a of list(st.Action)) assert.match(a, /^(logs:(Describe|Get|Filter|StartQuery|StopQuery)|kms:Decrypt$)/);
    }
    const decrypt = statements.find((st) => list(st.Action).includes('kms:Decrypt'))!;
    assert.deepEqual(decrypt.Condition, { StringEquals: { 'kms:ViaService': `logs.${s.config.env.region}.amazonaws.com` } });
  });

  it('records CloudTrail in every region with validation, KMS and CloudWatch Logs', () => {
    t().hasResourceProperties('AWS::CloudTrail::Trail', {
      IsMultiRegionTrail: true,
      IncludeGlobalServiceEvents: true,
      EnableLogFileValidation: true,
      KMSKeyId: Match.anyValue(),
      CloudWatchLogsLogGroupArn: Match.anyValue(),
    });
    t().hasResourceProperties('AWS::GuardDuty::Detector', { Enable: true, Features: Match.arrayWith([Match.objectLike({ Name: 'RDS_LOGIN_EVENTS', Status: 'ENABLED' })]) });
  });

  it('alarms on every DLQ, Lambda errors and throttles, relay lag, ALB 5xx, Aurora, projection lag and running tasks', () => {
    const alarms = resources(t(), 'AWS::CloudWatch::Alarm').map(([, r]) => r.Properties!);
    const named = (metric: string): Props[] => alarms.filter((a) => a.MetricName === metric);
    // Topology DLQs + stream, delivery and schedule failure queues.
    assert.equal(named('ApproximateNumberOfMessagesVisible').length, s.topology.queues.length + 3);
    // Every function of ours (CDK's own helper functions aside), in whichever stack.
    const ours = [s.events, s.services, s.identity]
      .flatMap((stack) => resources(s.template(stack), 'AWS::Lambda::Function'))
      .filter(([, r]) => r.Properties!.Runtime === 'provided.al2023');
    assert.equal(ours.length, 6);
    assert.equal(named('Errors').length, ours.length);
    assert.equal(named('Throttles').length, ours.length);
    assert.equal(named('IteratorAge').length, 1);
    assert.equal(named('ApproximateAgeOfOldestMessage').length, 1);
    for (const m of ['HTTPCode_ELB_5XX_Count', 'HTTPCode_Target_5XX_Count', 'CPUUtilization', 'ACUUtilization', 'DatabaseConnections', 'FreeableMemory']) {
      assert.equal(named(m).length, 1, m);
    }
    const running = named('RunningTaskCount');
    assert.equal(running.length, 2);
    for (const a of running) {
      assert.equal(a.Threshold, s.config.env.minTasks);
      assert.equal(a.ComparisonOperator, 'LessThanThreshold');
    }
    for (const a of alarms) assert.equal(list(a.AlarmActions).length, 1);
    t().resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    t().hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    t().hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: s.config.env.alarmEmail });
  });

  it('spreads the network over the context zones with endpoints and encrypted flow logs', () => {
    const n = s.template(s.network);
    const zones = new Set(resources(n, 'AWS::EC2::Subnet').map(([, r]) => r.Properties!.AvailabilityZone));
    assert.deepEqual([...zones].sort(), [...s.config.env.availabilityZones].sort());
    const endpoints = resources(n, 'AWS::EC2::VPCEndpoint').map(([, r]) => JSON.stringify(r.Properties!.ServiceName));
    for (const service of ['dynamodb', 's3', 'sqs', 'events', 'secretsmanager', 'kms', 'ecr.api', 'ecr.dkr', 'logs', 'sts']) {
      assert.ok(endpoints.some((e) => e.includes(`.${service}"`) || e.includes(`.${service}`)), service);
    }
    n.hasResourceProperties('AWS::EC2::FlowLog', { LogDestinationType: 'cloud-watch-logs', TrafficType: 'ALL' });
    n.resourceCountIs('AWS::EC2::NatGateway', s.config.env.natGateways);
  });

  it('lets only the services, RDS Proxy and the rotation function reach Aurora', () => {
    const n = s.template(s.network);
    const dbSg = Object.keys(n.findResources('AWS::EC2::SecurityGroup')).find((id) => id.startsWith('DatabaseSg'))!;
    const ingress = resources(n, 'AWS::EC2::SecurityGroupIngress')
      .map(([, r]) => r.Properties!)
      .filter((p) => p.GroupId['Fn::GetAtt'][0] === dbSg);
    const sources = ingress.map((p) => p.SourceSecurityGroupId['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')).sort();
    assert.deepEqual(sources, ['DbProxySg', 'RotationSg', 'ServicesSg']);
    for (const p of ingress) assert.equal(p.FromPort, 5432);
    const dbSgProps = n.findResources('AWS::EC2::SecurityGroup')[dbSg].Properties;
    assert.equal(dbSgProps.SecurityGroupIngress, undefined);
  });

  it('has no unsuppressed cdk-nag error or warning in any stack', () => {
    for (const stack of s.all) {
      const annotations = Annotations.fromStack(stack);
      const errors = annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
      const warnings = annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
      assert.deepEqual(errors.map((e) => `${e.id}: ${String(e.entry.data).slice(0, 120)}`), [], stack.stackName);
      assert.deepEqual(warnings.map((e) => `${e.id}: ${String(e.entry.data).slice(0, 120)}`), [], stack.stackName);
    }
  });

  it('outputs what the deploy workflow reads from Services and Edge', () => {
    const services = s.template(s.services).findOutputs('*');
    for (const id of ['AlbDnsName', 'ApiUrl', 'ClusterName', 'CommandServiceName', 'QueryServiceName']) assert.ok(services[id], id);
    assert.equal(services.ApiUrl.Value, `https://${s.config.env.apiOriginDomain}`);
    const edge = s.template(s.edge).findOutputs('*');
    for (const id of ['UiBucketName', 'DistributionId', 'SiteUrl']) assert.ok(edge[id], id);
    assert.equal(edge.SiteUrl.Value, `https://${s.config.env.domainName}`);
  });
}

export function bootstrapCases(s: Synthesized): void {
  const t = () => s.template(s.bootstrap);

  it('trusts GitHub OIDC only for the repository main branch and its environments', () => {
    t().hasResourceProperties('AWS::IAM::OIDCProvider', { Url: 'https://token.actions.githubusercontent.com', ClientIdList: ['sts.amazonaws.com'] });
    const role = Object.values<Props>(t().findResources('AWS::IAM::Role')).find((r) => JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('AssumeRoleWithWebIdentity'))!;
    const [statement] = role.Properties.AssumeRolePolicyDocument.Statement;
    assert.equal(role.Properties.AssumeRolePolicyDocument.Statement.length, 1);
    const repo = s.config.githubRepository;
    const here = s.config.environments.filter((e) => e.account === s.config.env.account).map((e) => e.name);
    assert.deepEqual(statement.Condition, {
      StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com' },
      'ForAnyValue:StringEquals': {
        'token.actions.githubusercontent.com:sub': [`repo:${repo}:ref:refs/heads/main`, ...here.map((e) => `repo:${repo}:environment:${e}`)],
      },
    });
    assert.ok(!JSON.stringify(statement.Condition).includes('*'), 'no wildcard subject');
  });

  it('lets the deploy role assume the CDK roles, push images, sync the UI, invalidate, read outputs', () => {
    const actions = identityStatements(t().toJSON()).flatMap(({ statement }) => list(statement.Action));
    for (const a of ['sts:AssumeRole', 'ecr:PutImage', 'ecr:GetAuthorizationToken', 's3:PutObject', 's3:DeleteObject', 'cloudfront:CreateInvalidation', 'cloudformation:DescribeStacks']) {
      assert.ok(actions.includes(a), a);
    }
    const assume = identityStatements(t().toJSON()).find(({ statement }) => list(statement.Action).includes('sts:AssumeRole'))!.statement;
    for (const r of list(assume.Resource)) assert.match(JSON.stringify(r), /role\/cdk-hnb659fds-\*-/);
  });

  it('creates both ECR repositories: scan on push, immutable tags, KMS, lifecycle', () => {
    const repos = resources(t(), 'AWS::ECR::Repository').map(([, r]) => r.Properties!);
    assert.deepEqual(repos.map((r) => r.RepositoryName).sort(), ['ledgerline/command-api', 'ledgerline/query-api']);
    for (const r of repos) {
      assert.deepEqual(r.ImageScanningConfiguration, { ScanOnPush: true });
      assert.equal(r.ImageTagMutability, 'IMMUTABLE');
      assert.equal(r.EncryptionConfiguration.EncryptionType, 'KMS');
      assert.ok(r.LifecyclePolicy.LifecyclePolicyText);
    }
    const outputs = t().findOutputs('*');
    for (const id of ['DeployRoleArn', 'CommandApiRepositoryUri', 'QueryApiRepositoryUri']) assert.ok(outputs[id], id);
  });
}
