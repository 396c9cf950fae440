// The event path: queues, rules and mappings exactly as topology.json says.
import * as assert from 'node:assert/strict';
import { it } from 'node:test';
import { queue as queueSpec, rebase } from '../../lib/topology';
import { Synthesized, resources, topology } from '../support';

type Props = Record<string, any>;

export function eventsCases(s: Synthesized): void {
  const t = () => s.template(s.events);
  const topo = topology();
  const prefix = s.config.env.prefix;
  const queues = () => resources(t(), 'AWS::SQS::Queue');
  const logicalIdOfQueue = (name: string): string => {
    const found = queues().find(([, r]) => r.Properties!.QueueName === name);
    assert.ok(found, `queue ${name} missing`);
    return found[0];
  };
  const functionId = (prefixOfId: string): string => {
    const found = resources(t(), 'AWS::Lambda::Function').find(([id]) => id.startsWith(prefixOfId));
    assert.ok(found, `function ${prefixOfId} missing`);
    return found[0];
  };
  const mappingOf = (fnId: string): Props => {
    const found = resources(t(), 'AWS::Lambda::EventSourceMapping').filter(([, r]) => r.Properties!.FunctionName.Ref === fnId);
    assert.equal(found.length, 1, `one mapping for ${fnId}`);
    return found[0][1].Properties!;
  };

  const scheduleOf = (fnId: string): any => {
    const found = resources(t(), 'AWS::Scheduler::Schedule').filter(([, r]) => r.Properties!.Target.Arn['Fn::GetAtt'][0] === fnId);
    assert.equal(found.length, 1, `one schedule for ${fnId}`);
    return found[0][1];
  };

  it('declares every topology queue as FIFO with its DLQ, redrive and visibility timeout', () => {
    for (const spec of topo.queues) {
      const dlqId = logicalIdOfQueue(rebase(topo, prefix, spec.deadLetterQueue));
      const [, queue] = queues().find(([, r]) => r.Properties!.QueueName === rebase(topo, prefix, spec.name))!;
      const p = queue.Properties!;
      assert.equal(p.FifoQueue, spec.fifo || undefined);
      assert.equal(p.ContentBasedDeduplication, spec.contentBasedDeduplication || undefined);
      assert.equal(p.DeduplicationScope, spec.highThroughput ? 'messageGroup' : undefined);
      assert.equal(p.FifoThroughputLimit, spec.highThroughput ? 'perMessageGroupId' : undefined);
      assert.equal(p.VisibilityTimeout, spec.visibilityTimeoutSeconds);
      assert.deepEqual(p.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: spec.maxReceiveCount });
      const dlq = queues().find(([id]) => id === dlqId)![1].Properties!;
      assert.equal(dlq.FifoQueue, spec.fifo || undefined);
    }
  });

  it('encrypts every queue with the customer key and refuses plain HTTP', () => {
    for (const [id, r] of queues()) {
      assert.ok(r.Properties!.KmsMasterKeyId?.['Fn::GetAtt'], `${id} uses a customer key`);
    }
    const policies = resources(t(), 'AWS::SQS::QueuePolicy').map(([, r]) => r.Properties!);
    for (const [id] of queues()) {
      const policy = policies.find((p) => p.Queues.some((q: Props) => q.Ref === id));
      assert.ok(policy, `${id} has a policy`);
      assert.ok(
        policy.PolicyDocument.Statement.some((st: Props) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false'),
        `${id} enforces SSL`,
      );
    }
  });

  it('declares one rule per topology rule, with its pattern, message group and queue targets', () => {
    const rules = resources(t(), 'AWS::Events::Rule').map(([, r]) => r.Properties!);
    assert.equal(rules.length, topo.rules.length);
    for (const spec of topo.rules) {
      const rule = rules.find((r) => r.Name === rebase(topo, prefix, spec.name));
      assert.ok(rule, `rule ${spec.name} missing`);
      assert.deepEqual(rule.EventPattern, spec.pattern);
      assert.deepEqual(
        rule.Targets.map((x: Props) => x.Arn['Fn::GetAtt'][0]).sort(),
        spec.targets.map((role) => logicalIdOfQueue(rebase(topo, prefix, topo.queues.find((q) => q.role === role)!.name))).sort(),
      );
      for (const target of rule.Targets) assert.deepEqual(target.SqsParameters, { MessageGroupId: spec.messageGroupId });
    }
    t().hasResourceProperties('AWS::Events::EventBus', { Name: rebase(topo, prefix, topo.bus) });
  });

  it('lets only the rules that target a queue send to it', () => {
    const rules = Object.entries(t().findResources('AWS::Events::Rule'));
    for (const spec of topo.queues) {
      const queueId = logicalIdOfQueue(rebase(topo, prefix, spec.name));
      const [, policy] = resources(t(), 'AWS::SQS::QueuePolicy').find(([, r]) => r.Properties!.Queues.some((q: Props) => q.Ref === queueId))!;
      const allows = policy.Properties!.PolicyDocument.Statement.filter((st: Props) => st.Effect === 'Allow');
      if (!topo.rules.some((rule) => rule.targets.includes(spec.role))) {
        // No rule targets it (the projector's queue, fed by the relay): EventBridge may not send.
        assert.equal(allows.length, 0, `${spec.role}: no rule sends to it`);
        continue;
      }
      assert.equal(allows.length, 1);
      assert.deepEqual(allows[0].Principal, { Service: 'events.amazonaws.com' });
      assert.equal(allows[0].Action, 'sqs:SendMessage');
      const expected = rules
        .filter(([, r]) => r.Properties.Targets.some((x: Props) => x.Arn['Fn::GetAtt'][0] === queueId))
        .map(([id]) => ({ 'Fn::GetAtt': [id, 'Arn'] }));
      const actual = allows[0].Condition.ArnEquals['aws:SourceArn'];
      assert.deepEqual([actual].flat(), expected);
    }
  });

  it('archives the bus for replay', () => {
    const [[, archive]] = resources(t(), 'AWS::Events::Archive') as any;
    const days = s.config.env.eventArchiveRetentionDays;
    // 0 keeps events forever (EventBridge's own meaning of 0).
    assert.equal(archive.Properties.RetentionDays ?? 0, days);
  });

  it('maps the events stream to the relay: TRIM_HORIZON, batch failures, bisect, bounded retries, on-failure queue', () => {
    const m = mappingOf(functionId('RelayFunction'));
    assert.equal(m.StartingPosition, 'TRIM_HORIZON');
    assert.deepEqual(m.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.equal(m.BisectBatchOnFunctionError, true);
    assert.ok(m.MaximumRetryAttempts > 0 && m.MaximumRetryAttempts <= 10);
    assert.ok(m.MaximumRecordAgeInSeconds > 0 && m.MaximumRecordAgeInSeconds <= 86400);
    assert.equal(m.ParallelizationFactor, 1);
    const destination = m.DestinationConfig.OnFailure.Destination['Fn::GetAtt'][0];
    assert.ok(queues().some(([id, r]) => id === destination && r.Properties!.KmsMasterKeyId));
    assert.ok(JSON.stringify(m.EventSourceArn).includes('StreamArn'));
  });

  it('maps the projector queue with batch failures, ≤10 per batch, bounded concurrency, timeout below visibility', () => {
    const fnId = functionId('ProjectorFunction');
    const m = mappingOf(fnId);
    const spec = topo.queues.find((q) => q.role === 'projector')!;
    assert.deepEqual(m.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.ok(m.BatchSize <= 10);
    assert.ok(m.ScalingConfig.MaximumConcurrency >= 2 && m.ScalingConfig.MaximumConcurrency <= 10);
    assert.deepEqual(m.EventSourceArn, { 'Fn::GetAtt': [logicalIdOfQueue(rebase(topo, prefix, spec.name)), 'Arn'] });
    const fn = t().findResources('AWS::Lambda::Function')[fnId].Properties;
    assert.ok(fn.Timeout < spec.visibilityTimeoutSeconds);
  });

  it('runs the SFTP worker on its queue and on a schedule that it recognises', () => {
    const fnId = functionId('SftpFunction');
    const m = mappingOf(fnId);
    const spec = topo.queues.find((q) => q.role === 'sftpExports')!;
    assert.deepEqual(m.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.ok(m.BatchSize <= 10);
    assert.ok(t().findResources('AWS::Lambda::Function')[fnId].Properties.Timeout < spec.visibilityTimeoutSeconds);
    const schedule = scheduleOf(fnId);
    assert.equal(schedule.Properties.ScheduleExpression, `rate(${s.config.env.sftp.scheduleMinutes} minutes)`);
    assert.deepEqual(JSON.parse(schedule.Properties.Target.Input), { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} });
    assert.ok(schedule.Properties.Target.DeadLetterConfig.Arn);
  });

  it('reads the pool\'s sign-in histories each minute, one run at a time, allowed only that', () => {
    const fnId = functionId('SignInAuditFunction');
    const fn = t().findResources('AWS::Lambda::Function')[fnId].Properties;
    assert.equal(fn.ReservedConcurrentExecutions, 1);
    assert.ok(fn.DeadLetterConfig.TargetArn);
    assert.deepEqual(Object.keys(fn.Environment.Variables).sort(), ['CRM_READ_DATABASE_SECRET_ARN', 'CRM_READ_DATABASE_URL', 'CRM_USER_POOL_ID']);
    const schedule = scheduleOf(fnId);
    assert.equal(schedule.Properties.ScheduleExpression, 'rate(1 minute)');
    assert.equal(schedule.Properties.Target.RetryPolicy.MaximumRetryAttempts, 0);
    assert.ok(schedule.Properties.Target.DeadLetterConfig.Arn);
    const role = fn.Role['Fn::GetAtt'][0];
    const statements = resources(t(), 'AWS::IAM::Policy')
      .filter(([, r]) => r.Properties!.Roles.some((ref: any) => ref.Ref === role))
      .flatMap(([, r]) => r.Properties!.PolicyDocument.Statement);
    const cognito = statements.filter((st: any) => [st.Action].flat().some((a: string) => a.startsWith('cognito-idp:')));
    assert.equal(cognito.length, 1);
    assert.deepEqual([cognito[0].Action].flat().sort(), ['cognito-idp:AdminListUserAuthEvents', 'cognito-idp:ListUsers']);
    assert.equal(typeof cognito[0].Resource, 'object', 'the pool by its ARN, not *');
  });

  it('gives the Lambdas the variables the Rust code reads', () => {
    const env = (id: string): Props => t().findResources('AWS::Lambda::Function')[functionId(id)].Properties.Environment.Variables;
    assert.deepEqual(Object.keys(env('RelayFunction')).sort(), ['CRM_DYNAMODB_TABLE_PREFIX', 'CRM_EVENT_BUS', 'CRM_PROJECTOR_QUEUE_URL']);
    assert.equal(env('RelayFunction').CRM_DYNAMODB_TABLE_PREFIX, prefix);
    assert.deepEqual(env('RelayFunction').CRM_PROJECTOR_QUEUE_URL, { Ref: logicalIdOfQueue(rebase(topo, prefix, queueSpec(topo, 'projector').name)) });
    assert.deepEqual(Object.keys(env('ProjectorFunction')).sort(), ['CRM_DATA_KEY_KMS_KEY', 'CRM_DYNAMODB_TABLE_PREFIX', 'CRM_READ_DATABASE_SECRET_ARN', 'CRM_READ_DATABASE_URL']);
    assert.equal(env('ProjectorFunction').CRM_DYNAMODB_TABLE_PREFIX, prefix);
    const sftp = env('SftpFunction');
    for (const name of [
      'CRM_API_URL', 'CRM_TOKEN_URL', 'CRM_SFTP_SECRET_ARN', 'CRM_SFTP_CLIENT_ID', 'CRM_READ_DATABASE_URL', 'CRM_READ_DATABASE_SECRET_ARN',
      'CRM_DYNAMODB_TABLE_PREFIX', 'CRM_DATA_KEY_KMS_KEY', 'CRM_SFTP_HOST', 'CRM_SFTP_PORT', 'CRM_SFTP_USER', 'CRM_SFTP_HOST_KEY', 'CRM_SFTP_INBOX', 'CRM_SFTP_OUTBOX',
      'CRM_SFTP_ARCHIVE', 'CRM_SFTP_ERROR',
    ]) {
      assert.ok(sftp[name] !== undefined, `sftp ${name}`);
    }
    assert.equal(sftp.CRM_API_URL, `https://${s.config.env.apiOriginDomain}`);
    assert.equal(sftp.CRM_TOKEN_URL, `https://${s.config.env.cognitoDomainPrefix}.auth.${s.config.env.region}.amazoncognito.com/oauth2/token`);
    assert.equal(sftp.CRM_SFTP_PORT, String(s.config.env.sftp.port));
    const url = JSON.stringify(env('ProjectorFunction').CRM_READ_DATABASE_URL);
    assert.match(url, /postgres:\/\/ledgerline@/);
    assert.match(url, /:5432\/ledgerline\?sslmode=require/);
    assert.doesNotMatch(url, /password|:[^/@"]+@/i);
  });

  it('deploys every Lambda as provided.al2023 in the VPC with active tracing and bounded concurrency', () => {
    for (const [id, r] of resources(t(), 'AWS::Lambda::Function')) {
      const p = r.Properties!;
      assert.equal(p.Runtime, 'provided.al2023', id);
      assert.equal(p.Handler, 'bootstrap', id);
      assert.deepEqual(p.Architectures, [s.config.lambdaArchitecture], id);
      assert.ok(p.VpcConfig.SubnetIds.length >= 2, id);
      assert.deepEqual(p.TracingConfig, { Mode: 'Active' }, id);
      assert.ok(p.ReservedConcurrentExecutions > 0, id);
      assert.ok(p.LoggingConfig.LogGroup, `${id} has its own log group`);
    }
  });
}
