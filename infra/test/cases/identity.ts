// Staff identity: the pool from topology.json and the clients the services accept.
import * as assert from 'node:assert/strict';
import { it } from 'node:test';
import { rebase } from '../../lib/topology';
import { Synthesized, resources, topology } from '../support';

type Props = Record<string, any>;

export function identityCases(s: Synthesized): void {
  const t = () => s.template(s.identity);
  const topo = topology();
  const cfg = s.config.env;

  it('names the pool, its groups and password policy from topology.json', () => {
    const [[, pool]] = resources(t(), 'AWS::Cognito::UserPool') as any;
    const p = pool.Properties;
    assert.equal(p.UserPoolName, rebase(topo, cfg.prefix, topo.userPool.name));
    const policy = topo.userPool.passwordPolicy;
    assert.deepEqual(p.Policies.PasswordPolicy, {
      MinimumLength: policy.minimumLength,
      RequireLowercase: policy.requireLowercase,
      RequireUppercase: policy.requireUppercase,
      RequireNumbers: policy.requireDigits,
      RequireSymbols: policy.requireSymbols,
      TemporaryPasswordValidityDays: policy.temporaryPasswordValidityDays,
    });
    const groups = resources(t(), 'AWS::Cognito::UserPoolGroup').map(([, r]) => r.Properties!.GroupName);
    assert.deepEqual(groups.sort(), [...topo.userPool.groups].sort());
  });

  it('requires TOTP MFA, threat protection, no self sign-up, deletion protection, retained', () => {
    const [[, pool]] = resources(t(), 'AWS::Cognito::UserPool') as any;
    const p = pool.Properties;
    assert.equal(p.MfaConfiguration, 'ON');
    assert.deepEqual(p.EnabledMfas, ['SOFTWARE_TOKEN_MFA']);
    assert.equal(p.UserPoolTier, 'PLUS');
    assert.equal(p.UserPoolAddOns.AdvancedSecurityMode, 'ENFORCED');
    assert.equal(p.AdminCreateUserConfig.AllowAdminCreateUserOnly, true);
    assert.equal(p.DeletionProtection, 'ACTIVE');
    assert.equal(pool.DeletionPolicy, 'Retain');
  });

  it('gives the UI a public authorization-code client on the CloudFront domain', () => {
    const clients = resources(t(), 'AWS::Cognito::UserPoolClient').map(([, r]) => r.Properties as Props);
    const ui = clients.find((c) => c.ClientName === rebase(topo, cfg.prefix, topo.userPool.appClient))!;
    assert.ok(ui);
    assert.equal(ui.GenerateSecret, false);
    assert.deepEqual(ui.AllowedOAuthFlows, ['code']);
    assert.deepEqual(ui.CallbackURLs, [`https://${cfg.domainName}/callback`]);
    assert.deepEqual(ui.LogoutURLs, [`https://${cfg.domainName}/`]);
    // The browser signs in through the hosted UI only: no password flows.
    assert.deepEqual(ui.ExplicitAuthFlows.sort(), ['ALLOW_REFRESH_TOKEN_AUTH', 'ALLOW_USER_SRP_AUTH']);
    const sftp = clients.find((c) => c.ClientName === `${cfg.prefix}sftp-worker`)!;
    assert.equal(sftp.GenerateSecret, true);
    assert.deepEqual(sftp.AllowedOAuthFlows, ['client_credentials']);
    t().hasResourceProperties('AWS::Cognito::UserPoolResourceServer', { Identifier: 'ledgerline-api' });
    t().hasResourceProperties('AWS::Cognito::UserPoolDomain', { Domain: cfg.cognitoDomainPrefix });
  });

  it('gives the smoke test an admin-only sign-in client (an IAM-signed call, no password endpoint)', () => {
    const clients = resources(t(), 'AWS::Cognito::UserPoolClient').map(([, r]) => r.Properties as Props);
    const smoke = clients.find((c) => c.ClientName === `${cfg.prefix}smoke-test`)!;
    assert.ok(smoke);
    assert.equal(smoke.GenerateSecret, false);
    assert.deepEqual(smoke.ExplicitAuthFlows.sort(), ['ALLOW_ADMIN_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH']);
    assert.equal(smoke.AllowedOAuthFlows, undefined);
  });

  it('exports sign-in activity (passed and failed) to a retained, encrypted log group', () => {
    const [[, delivery]] = resources(t(), 'AWS::Cognito::LogDeliveryConfiguration') as any;
    const [config] = delivery.Properties.LogConfigurations;
    assert.equal(config.EventSource, 'userAuthEvents');
    assert.equal(config.LogLevel, 'INFO');
    const groups = t().findResources('AWS::Logs::LogGroup');
    const group = groups[config.CloudWatchLogsConfiguration.LogGroupArn['Fn::GetAtt'][0]].Properties;
    assert.equal(group.LogGroupName, `/ledgerline/${cfg.name}/sign-in-activity`);
    assert.equal(group.RetentionInDays, cfg.logRetentionDays);
    assert.ok(group.KmsKeyId);
  });

  it('puts every sign-in into the system log through a post-authentication trigger that answers within Cognito\'s 5 s', () => {
    const [[, pool]] = resources(t(), 'AWS::Cognito::UserPool') as any;
    const trigger = pool.Properties.LambdaConfig.PostAuthentication['Fn::GetAtt'][0];
    const fn = t().findResources('AWS::Lambda::Function')[trigger].Properties;
    assert.ok(fn.Timeout <= 5, `timeout ${fn.Timeout}`);
    assert.ok(fn.VpcConfig, 'in the VPC, to reach RDS Proxy');
    const env = fn.Environment.Variables;
    assert.ok(env.CRM_READ_DATABASE_URL && env.CRM_READ_DATABASE_SECRET_ARN);
    const invoke = resources(t(), 'AWS::Lambda::Permission').map(([, r]) => r.Properties as Props);
    assert.ok(invoke.some((p) => p.Principal === 'cognito-idp.amazonaws.com'), 'Cognito may invoke it');
  });

  it('outputs what the deploy workflow reads', () => {
    const outputs = t().findOutputs('*');
    for (const id of ['UserPoolId', 'UiClientId', 'SftpClientId', 'SmokeClientId', 'CognitoDomainUrl', 'Authority']) assert.ok(outputs[id], id);
    assert.equal(outputs.CognitoDomainUrl.Value, `https://${cfg.cognitoDomainPrefix}.auth.${cfg.region}.amazoncognito.com`);
    assert.match(JSON.stringify(outputs.Authority.Value), new RegExp(`https://cognito-idp.${cfg.region}.amazonaws.com/`));
  });
}
