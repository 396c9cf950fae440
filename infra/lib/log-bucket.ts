// A bucket for access logs that AWS services deliver (ALB, CloudFront, S3 server access
// logs). Those deliveries support SSE-S3 only, so these are the buckets without our KMS key.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { skipCheckov, suppress } from './common';

export interface LogBucketProps {
  readonly retentionDays: number;
  /** CloudFront standard logging writes with ACLs. */
  readonly objectOwnership?: s3.ObjectOwnership;
}

export function newLogBucket(scope: Construct, id: string, props: LogBucketProps): s3.Bucket {
  const bucket = new s3.Bucket(scope, id, {
    encryption: s3.BucketEncryption.S3_MANAGED,
    versioned: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    objectOwnership: props.objectOwnership ?? s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy: RemovalPolicy.RETAIN,
    lifecycleRules: [
      {
        id: 'age-out',
        transitions: [{ storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) }],
        expiration: Duration.days(Math.max(props.retentionDays, 91)),
        noncurrentVersionExpiration: Duration.days(30),
        abortIncompleteMultipartUploadAfter: Duration.days(7),
      },
    ],
  });
  suppress(bucket, [{ id: 'AwsSolutions-S1', reason: 'This bucket receives access logs; logging its own access would recurse.' }]);
  skipCheckov(bucket, [
    { id: 'CKV_AWS_18', comment: 'This bucket receives access logs; logging its own access would recurse.' },
  ]);
  return bucket;
}
