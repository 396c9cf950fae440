// The event store, Aurora and the ledger digests: names and keys from topology.json, and their protections.
import * as assert from 'node:assert/strict';
import { it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { DIGEST_RETENTION_YEARS } from '../../lib/data-stack';
import { rebase } from '../../lib/topology';
import { Synthesized, resources, topology } from '../support';

export function dataCases(s: Synthesized): void {
  const t = () => s.template(s.data);
  const topo = topology();
  const prefix = s.config.env.prefix;

  it('declares exactly the topology tables, with their names and key schemas', () => {
    const tables = resources(t(), 'AWS::DynamoDB::Table').map(([, r]) => r.Properties!);
    assert.equal(tables.length, topo.tables.length);
    for (const spec of topo.tables) {
      const table = tables.find((p) => p.TableName === rebase(topo, prefix, spec.name));
      assert.ok(table, `table ${spec.name} missing`);
      const keys = [{ AttributeName: spec.partitionKey.name, KeyType: 'HASH' }];
      const attrs = [{ AttributeName: spec.partitionKey.name, AttributeType: spec.partitionKey.type }];
      if (spec.sortKey) {
        keys.push({ AttributeName: spec.sortKey.name, KeyType: 'RANGE' });
        attrs.push({ AttributeName: spec.sortKey.name, AttributeType: spec.sortKey.type });
      }
      assert.deepEqual(table.KeySchema, keys);
      assert.deepEqual(table.AttributeDefinitions, attrs);
      assert.deepEqual(table.StreamSpecification, spec.stream ? { StreamViewType: spec.stream } : undefined);
    }
  });

  it('streams the events table as NEW_IMAGE', () => {
    t().hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: rebase(topo, prefix, topo.tables.find((x) => x.role === 'events')!.name),
      StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
    });
  });

  it('protects every table: on demand, PITR, deletion protection, customer key, retained', () => {
    for (const [id, r] of Object.entries(t().findResources('AWS::DynamoDB::Table'))) {
      const p = r.Properties;
      assert.equal(p.BillingMode, 'PAY_PER_REQUEST', id);
      assert.deepEqual(p.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true }, id);
      assert.equal(p.DeletionProtectionEnabled, true, id);
      assert.equal(p.SSESpecification.SSEEnabled, true, id);
      assert.equal(p.SSESpecification.SSEType, 'KMS', id);
      assert.ok(p.SSESpecification.KMSMasterKeyId, id);
      assert.equal(r.DeletionPolicy, 'Retain', id);
      assert.equal(r.UpdateReplacePolicy, 'Retain', id);
    }
  });

  it('keeps the ledger digests where no one can rewrite them: a P-256 signing key, a bucket under compliance Object Lock', () => {
    const keys = resources(t(), 'AWS::KMS::Key').filter(([, r]) => r.Properties!.KeyUsage === 'SIGN_VERIFY');
    assert.equal(keys.length, 1);
    assert.equal(keys[0][1].Properties!.KeySpec, 'ECC_NIST_P256');
    const buckets = resources(t(), 'AWS::S3::Bucket').filter(([, r]) => r.Properties!.ObjectLockEnabled);
    assert.equal(buckets.length, 1);
    const p = buckets[0][1].Properties!;
    assert.deepEqual(p.ObjectLockConfiguration, {
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 365 * DIGEST_RETENTION_YEARS } },
    });
    assert.equal(p.VersioningConfiguration.Status, 'Enabled');
    assert.ok(!JSON.stringify(p.LifecycleConfiguration).includes('Expiration'), 'digests never expire');
    assert.ok(p.LoggingConfiguration.DestinationBucketName, 'access logged');
  });

  it('runs Aurora with a writer and a reader in different zones', () => {
    const instances = resources(t(), 'AWS::RDS::DBInstance').map(([, r]) => r.Properties!);
    assert.equal(instances.length, 2);
    const zones = instances.map((i) => i.AvailabilityZone);
    assert.deepEqual(zones.sort(), s.config.env.availabilityZones.slice(0, 2).sort());
    assert.notEqual(zones[0], zones[1]);
    for (const i of instances) {
      assert.equal(i.DBInstanceClass, 'db.serverless');
      assert.equal(i.PubliclyAccessible, false);
    }
    const groups = resources(t(), 'AWS::RDS::DBSubnetGroup');
    assert.equal(groups.length, 1);
    assert.equal(groups[0][1].Properties!.SubnetIds.length, s.config.env.availabilityZones.length);
  });

  it('protects Aurora: encryption, IAM auth, backups, deletion protection, log exports', () => {
    const [[, cluster]] = resources(t(), 'AWS::RDS::DBCluster') as any;
    const p = cluster.Properties;
    assert.equal(p.Engine, 'aurora-postgresql');
    assert.equal(p.StorageEncrypted, true);
    assert.ok(p.KmsKeyId);
    assert.equal(p.EnableIAMDatabaseAuthentication, true);
    assert.equal(p.DeletionProtection, true);
    assert.equal(p.BackupRetentionPeriod, s.config.env.backupRetentionDays);
    assert.deepEqual(p.EnableCloudwatchLogsExports, ['postgresql']);
    assert.deepEqual(p.ServerlessV2ScalingConfiguration, { MinCapacity: s.config.env.auroraMinCapacity, MaxCapacity: s.config.env.auroraMaxCapacity });
    assert.equal(cluster.DeletionPolicy, 'Retain');
    t().hasResourceProperties('AWS::RDS::DBClusterParameterGroup', { Parameters: Match.objectLike({ 'rds.force_ssl': '1' }) });
  });

  it('keeps the credentials in Secrets Manager with hosted rotation, and fronts Aurora with RDS Proxy', () => {
    t().hasResourceProperties('AWS::SecretsManager::Secret', { Name: `${prefix}aurora`, KmsKeyId: Match.anyValue() });
    t().hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      HostedRotationLambda: Match.objectLike({ RotationType: 'PostgreSQLSingleUser', KmsKeyArn: Match.anyValue(), VpcSubnetIds: Match.anyValue() }),
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
    });
    t().hasResourceProperties('AWS::RDS::DBProxy', { EngineFamily: 'POSTGRESQL', RequireTLS: true });
  });
}
