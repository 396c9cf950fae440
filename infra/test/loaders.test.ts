// The loaders fail synth with clear messages, and the stacks follow topology.json (a
// changed topology changes the templates: nothing is hard-coded).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../lib/app';
import { loadConfig } from '../lib/config';
import { lambdaAsset } from '../lib/rust-function';
import { Topology, parseTopology, rebase } from '../lib/topology';
import { INFRA_DIR, cdkContext, placeholderLambdas, topology } from './support';

const contextNode = (context: Record<string, unknown>) => ({ tryGetContext: (key: string) => context[key] });

describe('topology.json', () => {
  it('is valid and every name carries its prefix', () => {
    const t = topology();
    assert.ok(t.tables.length >= 3 && t.queues.length >= 1 && t.rules.length >= 1);
  });

  it('names every missing field', () => {
    const raw = JSON.parse(fs.readFileSync(path.join(INFRA_DIR, 'topology.json'), 'utf8'));
    delete raw.bus;
    delete raw.queues[0].maxReceiveCount;
    raw.rules[0].targets = ['nowhere'];
    delete raw.userPool.passwordPolicy.minimumLength;
    assert.throws(
      () => parseTopology(raw),
      (e: Error) =>
        e.message.includes('topology.bus') &&
        e.message.includes('queues[0].maxReceiveCount') &&
        e.message.includes('"nowhere" is not a queue role') &&
        e.message.includes('userPool.passwordPolicy.minimumLength'),
    );
  });

  it('rejects a name without the prefix, and rebases names onto an environment prefix', () => {
    const raw = JSON.parse(fs.readFileSync(path.join(INFRA_DIR, 'topology.json'), 'utf8'));
    raw.tables[0].name = 'Events';
    assert.throws(() => parseTopology(raw), /does not start with the prefix/);
    const t = topology();
    assert.equal(rebase(t, 'bank-', `${t.prefix}events`), 'bank-events');
  });
});

describe('context', () => {
  it('names every invalid value', () => {
    const context = structuredClone(cdkContext()) as any;
    delete context.environments.staging.account;
    context.environments.staging.availabilityZones = ['us-east-1a'];
    context.environments.staging.logRetentionDays = 42;
    context.environments.production.cloudFrontCertificateArn = 'arn:aws:acm:eu-west-1:222222222222:certificate/x';
    assert.throws(
      () => loadConfig(contextNode(context), INFRA_DIR),
      (e: Error) =>
        ['staging.account', 'at least two explicit zones', 'staging.logRetentionDays', 'production.cloudFrontCertificateArn'].every((m) => e.message.includes(m)),
    );
  });

  it('refuses an unknown environment', () => {
    assert.throws(() => loadConfig(contextNode({ ...cdkContext(), env: 'qa' }), INFRA_DIR), /"qa" is not one of environments/);
  });

  it('says how to build a missing Lambda package', () => {
    const config = loadConfig(contextNode({ ...cdkContext(), lambdaAssetsDir: '/nonexistent' }), INFRA_DIR);
    assert.throws(() => lambdaAsset(config, 'relay-lambda'), /scripts\/package-lambdas/);
  });
});

describe('stacks follow topology.json', () => {
  it('renames and reconfigures resources when the topology changes', () => {
    const t = structuredClone(topology()) as { -readonly [K in keyof Topology]: any };
    t.prefix = 'x-';
    const swap = (name: string): string => `x-${name.slice(topology().prefix.length)}`;
    t.tables = t.tables.map((x: any) => ({ ...x, name: swap(x.name) + 'V2' }));
    t.bus = swap(t.bus);
    t.queues = t.queues.map((q: any) => ({ ...q, name: swap(q.name), deadLetterQueue: swap(q.deadLetterQueue), maxReceiveCount: 9, visibilityTimeoutSeconds: 90 }));
    t.rules = t.rules.map((r: any) => ({ ...r, name: swap(r.name), messageGroupId: `${r.messageGroupId}-g` }));
    t.userPool = { ...t.userPool, name: swap(t.userPool.name), appClient: swap(t.userPool.appClient), groups: ['a', 'b'] };
    const app = new App({ context: { ...cdkContext(), env: 'staging', lambdaAssetsDir: placeholderLambdas() } });
    const stacks = buildApp(app, INFRA_DIR, parseTopology(t));
    const data = Template.fromStack(stacks.data);
    const events = Template.fromStack(stacks.events);
    const identity = Template.fromStack(stacks.identity);
    // The environment's prefix (crm-) replaces the topology's (x-).
    data.hasResourceProperties('AWS::DynamoDB::Table', { TableName: 'crm-EventsV2' });
    events.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'crm-projector.fifo', VisibilityTimeout: 90, RedrivePolicy: Match.objectLike({ maxReceiveCount: 9 }) });
    const rule = Object.values<any>(events.findResources('AWS::Events::Rule'))[0].Properties;
    assert.equal(rule.Targets[0].SqsParameters.MessageGroupId.endsWith('-g'), true);
    assert.equal(Object.keys(identity.findResources('AWS::Cognito::UserPoolGroup')).length, 2);
    // The projector's timeout follows the new visibility timeout.
    const projector = Object.entries<any>(events.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('Projector'))![1];
    assert.equal(projector.Properties.Timeout, 45);
  });
});
