// The HTTP side: Fargate services, the ALB's routing and TLS, the mail Lambda, the WAF.
import * as assert from 'node:assert/strict';
import { it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { Synthesized, resources, topology } from '../support';

type Props = Record<string, any>;

export function servicesCases(s: Synthesized): void {
  const t = () => s.template(s.services);
  const cfg = s.config.env;
  const rules = () => resources(t(), 'AWS::ElasticLoadBalancingV2::ListenerRule').map(([, r]) => r.Properties!);
  const targetGroupOf = (serviceId: string): string => {
    const svc = t().findResources('AWS::ECS::Service')[serviceId].Properties;
    return svc.LoadBalancers[0].TargetGroupArn.Ref;
  };
  const serviceId = (name: string): string => Object.keys(t().findResources('AWS::ECS::Service')).find((id) => id.startsWith(name))!;

  it('runs ≥2 tasks per service with circuit breaker rollback, private, no exec', () => {
    const services = resources(t(), 'AWS::ECS::Service');
    assert.equal(services.length, 2);
    for (const [id, r] of services) {
      const p = r.Properties!;
      assert.ok(p.DesiredCount >= 2 && p.DesiredCount === cfg.minTasks, id);
      assert.deepEqual(p.DeploymentConfiguration.DeploymentCircuitBreaker, { Enable: true, Rollback: true }, id);
      assert.equal(p.DeploymentConfiguration.MinimumHealthyPercent, 100, id);
      assert.equal(p.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp, 'DISABLED', id);
      assert.ok(p.NetworkConfiguration.AwsvpcConfiguration.Subnets.length >= 2, id);
      assert.equal(p.EnableExecuteCommand, false, id);
      assert.equal(p.LaunchType, 'FARGATE', id);
    }
    t().hasResourceProperties('AWS::ECS::Cluster', { ClusterSettings: [{ Name: 'containerInsights', Value: 'enhanced' }] });
  });

  it('scales each service on CPU and on requests per target, between min and max tasks', () => {
    const targets = resources(t(), 'AWS::ApplicationAutoScaling::ScalableTarget').map(([, r]) => r.Properties!);
    assert.equal(targets.length, 2);
    for (const target of targets) {
      assert.equal(target.MinCapacity, cfg.minTasks);
      assert.equal(target.MaxCapacity, cfg.maxTasks);
    }
    const metrics = resources(t(), 'AWS::ApplicationAutoScaling::ScalingPolicy').map(
      ([, r]) => r.Properties!.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType,
    );
    assert.deepEqual(metrics.sort(), ['ALBRequestCountPerTarget', 'ALBRequestCountPerTarget', 'ECSServiceAverageCPUUtilization', 'ECSServiceAverageCPUUtilization']);
  });

  it('hardens the containers and passes the configuration the services read', () => {
    for (const [id, r] of resources(t(), 'AWS::ECS::TaskDefinition')) {
      const [c] = r.Properties!.ContainerDefinitions;
      assert.equal(c.User, '65532:65532', id);
      assert.equal(c.ReadonlyRootFilesystem, true, id);
      assert.equal(c.Privileged, false, id);
      assert.deepEqual(c.LinuxParameters.Capabilities.Drop, ['ALL'], id);
      const env = Object.fromEntries(c.Environment.map((e: Props) => [e.Name, e.Value]));
      assert.equal(env.CRM_ADDR, '0.0.0.0:8080');
      assert.equal(env.CRM_DYNAMODB_TABLE_PREFIX, cfg.prefix);
      assert.ok(env.CRM_DATA_KEY_KMS_KEY, `${id}: the personal-data key`);
      assert.equal(env.AWS_REGION, cfg.region);
      assert.ok(env.CRM_COGNITO_USER_POOL_ID);
      assert.equal(env.CRM_COGNITO_CLIENT_IDS['Fn::Join'][1].length, 5, 'UI, SFTP worker and smoke-test client ids, comma-separated');
      const url = JSON.stringify(env.CRM_READ_DATABASE_URL);
      assert.match(url, /postgres:\/\/ledgerline@/);
      assert.match(url, /sslmode=require/);
      const digests = ['CRM_DIGEST_KMS_KEY', 'CRM_DIGEST_BUCKET'].filter((name) => env[name] !== undefined);
      assert.deepEqual(digests, id.startsWith('query') ? ['CRM_DIGEST_KMS_KEY', 'CRM_DIGEST_BUCKET'] : [], `${id}: only the query service signs digests`);
      assert.deepEqual(c.Secrets.map((x: Props) => x.Name), ['PGPASSWORD']);
      assert.match(JSON.stringify(c.Secrets[0].ValueFrom), /:password::/);
      assert.equal(c.LogConfiguration.LogDriver, 'awslogs');
      assert.match(JSON.stringify(c.Image), new RegExp(`ledgerline/(command|query)-api:${s.config.imageTag}`));
    }
  });

  it('checks target health on /health/ready, and each container checks its own', () => {
    for (const [, task] of resources(t(), 'AWS::ECS::TaskDefinition')) {
      const [c] = (task.Properties as Props).ContainerDefinitions;
      assert.deepEqual(c.HealthCheck.Command, ['CMD', '/app/service', 'health']);
    }
    for (const name of ['commandService', 'queryService']) {
      const tg = t().findResources('AWS::ElasticLoadBalancingV2::TargetGroup')[targetGroupOf(serviceId(name))].Properties;
      assert.equal(tg.HealthCheckPath, '/health/ready');
      assert.equal(tg.TargetType, 'ip');
      assert.equal(tg.Port, 8080);
    }
  });

  it('terminates TLS ≥1.2 with the certificate from context and only redirects on HTTP', () => {
    t().hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
      Certificates: [{ CertificateArn: cfg.albCertificateArn }],
      DefaultActions: [Match.objectLike({ Type: 'fixed-response', FixedResponseConfig: Match.objectLike({ StatusCode: '404' }) })],
    });
    t().hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [{ Type: 'redirect', RedirectConfig: { Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' } }],
    });
    t().hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internet-facing',
      LoadBalancerAttributes: Match.arrayWith([
        { Key: 'deletion_protection.enabled', Value: 'true' },
        { Key: 'routing.http.drop_invalid_header_fields.enabled', Value: 'true' },
        { Key: 'access_logs.s3.enabled', Value: 'true' },
      ]),
    });
  });

  it('routes mail to the Lambda, transfer progress to commands, GET/HEAD to queries, other methods to commands, hides /metrics and /health', () => {
    const byPriority = new Map(rules().map((r) => [r.Priority, r]));
    const paths = (r: Props): string[] => r.Conditions.find((c: Props) => c.Field === 'path-pattern').PathPatternConfig.Values;
    const methods = (r: Props): string[] | undefined => r.Conditions.find((c: Props) => c.Field === 'http-request-method')?.HttpRequestMethodConfig.Values;
    const forwardTo = (r: Props): string => r.Actions[0].TargetGroupArn?.Ref;
    const tgs = t().findResources('AWS::ElasticLoadBalancingV2::TargetGroup');

    const ordered = [...byPriority.keys()].sort((a, b) => a - b).map((p) => byPriority.get(p)!);
    const mail = ordered.find((r) => paths(r).includes('/v1/mail'))!;
    assert.deepEqual(paths(mail).sort(), ['/v1/mail', '/v1/mail/*']);
    assert.equal(tgs[forwardTo(mail)].Properties.TargetType, 'lambda');

    const hidden = ordered.find((r) => paths(r).includes('/metrics'))!;
    assert.deepEqual(paths(hidden).sort(), ['/health/*', '/metrics']);
    assert.equal(hidden.Actions[0].Type, 'fixed-response');
    assert.equal(hidden.Actions[0].FixedResponseConfig.StatusCode, '404');

    const transfers = ordered.find((r) => paths(r).includes('/v1/transfers/*'))!;
    assert.deepEqual(methods(transfers)!.sort(), ['GET', 'HEAD']);
    assert.equal(forwardTo(transfers), targetGroupOf(serviceId('commandService')), 'a transfer\'s progress is the command service\'s');
    const rebuild = ordered.find((r) => paths(r).includes('/v1/admin/rebuild'))!;
    assert.equal(forwardTo(rebuild), targetGroupOf(serviceId('queryService')));

    const queries = ordered.find((r) => methods(r) && paths(r).includes('/v1/*'))!;
    assert.deepEqual(methods(queries)!.sort(), ['GET', 'HEAD']);
    assert.deepEqual(paths(queries).sort(), ['/v1/*']);
    assert.equal(forwardTo(queries), targetGroupOf(serviceId('queryService')));

    const commands = ordered.find((r) => !methods(r) && paths(r).includes('/v1/*'))!;
    assert.equal(forwardTo(commands), targetGroupOf(serviceId('commandService')));
    // Mail first, queries before the catch-all for commands.
    assert.ok(mail.Priority < queries.Priority && queries.Priority < commands.Priority);
    assert.ok(transfers.Priority < queries.Priority && rebuild.Priority < commands.Priority);
  });

  it('declares the listener rules topology.json routes by (as the local front door does)', () => {
    const declared = rules().map((r) => ({
      priority: r.Priority,
      paths: [...r.Conditions.find((c: Props) => c.Field === 'path-pattern').PathPatternConfig.Values].sort(),
      methods: [...(r.Conditions.find((c: Props) => c.Field === 'http-request-method')?.HttpRequestMethodConfig.Values ?? [])].sort(),
    }));
    const routes = topology().routes.map((r) => ({ priority: r.priority, paths: [...r.paths].sort(), methods: [...r.methods].sort() }));
    assert.deepEqual(
      declared.sort((a, b) => a.priority - b.priority),
      routes.sort((a, b) => a.priority - b.priority),
    );
  });

  it('lets only its own target group invoke the mail Lambda', () => {
    const perms = resources(t(), 'AWS::Lambda::Permission').map(([, r]) => r.Properties!);
    assert.equal(perms.length, 1);
    assert.equal(perms[0].Principal, 'elasticloadbalancing.amazonaws.com');
    assert.match(JSON.stringify(perms[0].SourceArn), /targetgroup\/crm-mail\/\*/);
  });

  it('gives the mail Lambda its configuration', () => {
    const [[, fn]] = resources(t(), 'AWS::Lambda::Function') as any;
    const env = fn.Properties.Environment.Variables;
    assert.equal(env.CRM_MAIL_PROVIDER, 'bedrock');
    assert.equal(env.CRM_MAIL_MODEL, cfg.mailModel);
    assert.equal(env.CRM_MAIL_FROM, cfg.mailFrom);
    assert.equal(env.CRM_DYNAMODB_TABLE_PREFIX, cfg.prefix);
    for (const name of ['CRM_READ_DATABASE_URL', 'CRM_READ_DATABASE_SECRET_ARN', 'CRM_COGNITO_USER_POOL_ID', 'CRM_COGNITO_CLIENT_IDS', 'CRM_DATA_KEY_KMS_KEY']) assert.ok(env[name], name);
  });

  it('protects the ALB with a regional WebACL (managed groups + rate limit) that logs', () => {
    const [[aclId, acl]] = resources(t(), 'AWS::WAFv2::WebACL') as any;
    assertWebAcl(acl.Properties, 'REGIONAL', cfg.wafRateLimit);
    t().hasResourceProperties('AWS::WAFv2::WebACLAssociation', { ResourceArn: { Ref: Match.stringLikeRegexp('^Alb') }, WebACLArn: { 'Fn::GetAtt': [aclId, 'Arn'] } });
    t().hasResourceProperties('AWS::WAFv2::LoggingConfiguration', { ResourceArn: { 'Fn::GetAtt': [aclId, 'Arn'] } });
  });
}

export function assertWebAcl(p: Props, scope: string, rateLimit: number): void {
  assert.equal(p.Scope, scope);
  const groups = p.Rules.filter((r: Props) => r.Statement.ManagedRuleGroupStatement).map((r: Props) => r.Statement.ManagedRuleGroupStatement.Name);
  assert.deepEqual(groups.sort(), [
    'AWSManagedRulesAmazonIpReputationList',
    'AWSManagedRulesCommonRuleSet',
    'AWSManagedRulesKnownBadInputsRuleSet',
    'AWSManagedRulesSQLiRuleSet',
  ]);
  const rate = p.Rules.find((r: Props) => r.Statement.RateBasedStatement);
  assert.equal(rate.Statement.RateBasedStatement.Limit, rateLimit);
  assert.deepEqual(rate.Action, { Block: {} });
}
