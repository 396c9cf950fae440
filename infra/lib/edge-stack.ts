// The edge: the UI bucket behind CloudFront (OAC), /v1/* forwarded to the ALB, the
// product's security headers, and a CLOUDFRONT WebACL. AWS creates CLOUDFRONT WebACLs
// only in us-east-1, so this whole stack is deployed there; it needs nothing from the
// regional stacks (the ALB's and Cognito's names come from context), so there are no
// cross-region references to resolve at synth time.
import { Annotations, CfnOutput, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { newKey, newLogsKey, suppress } from './common';
import { EnvironmentConfig } from './config';
import { newLogBucket } from './log-bucket';
import { Topology } from './topology';
import { WebAcl } from './waf';

export interface EdgeStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  readonly topology: Topology;
}

/** Paths without a file extension outside /v1/ are the SPA's routes: serve index.html. */
const SPA_REWRITE = `function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var last = uri.substring(uri.lastIndexOf('/') + 1);
  if (uri.indexOf('/v1/') !== 0 && last.indexOf('.') === -1) {
    request.uri = '/index.html';
  }
  return request;
}`;

/** The UI bucket's name; the Bootstrap stack's deploy role may sync to `<prefix>ui-*`. */
export function uiBucketName(config: EnvironmentConfig): string {
  return `${config.prefix}ui-${config.account}-${config.name}`;
}

/** The product's CSP (topology.json), with the Cognito endpoints the UI signs in at. */
export function contentSecurityPolicy(config: EnvironmentConfig, topology: Topology): string {
  const cognitoApi = `https://cognito-idp.${config.region}.amazonaws.com`;
  const cognitoDomain = `https://${config.cognitoDomainPrefix}.auth.${config.region}.amazoncognito.com`;
  return `${topology.securityHeaders['content-security-policy']}; connect-src 'self' ${cognitoApi} ${cognitoDomain}`;
}

function frameOption(value: string): cloudfront.HeadersFrameOption {
  if (value === 'DENY') return cloudfront.HeadersFrameOption.DENY;
  if (value === 'SAMEORIGIN') return cloudfront.HeadersFrameOption.SAMEORIGIN;
  throw new Error(`topology.json: x-frame-options "${value}" is neither DENY nor SAMEORIGIN`);
}

function referrerPolicy(value: string): cloudfront.HeadersReferrerPolicy {
  const policy = Object.values(cloudfront.HeadersReferrerPolicy).find((p) => p === value);
  if (!policy) throw new Error(`topology.json: referrer-policy "${value}" is not one CloudFront knows`);
  return policy;
}

export class EdgeStack extends Stack {
  readonly uiBucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;
  readonly uiKey: kms.Key;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { config, topology } = props;

    const logs = newLogBucket(this, 'AccessLogs', {
      retentionDays: config.logRetentionDays,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
    });
    this.uiKey = newKey(this, 'UiKey', `Ledgerline ${config.name}: UI bucket`);
    this.uiBucket = new s3.Bucket(this, 'Ui', {
      bucketName: uiBucketName(config),
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.uiKey,
      bucketKeyEnabled: true,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      serverAccessLogsBucket: logs,
      serverAccessLogsPrefix: 's3-ui/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ id: 'old-builds', noncurrentVersionExpiration: Duration.days(90), abortIncompleteMultipartUploadAfter: Duration.days(7) }],
    });

    const headers = new cloudfront.ResponseHeadersPolicy(this, 'Headers', {
      comment: 'Ledgerline security headers',
      securityHeadersBehavior: {
        // The product's own headers (topology.json), so the UI gets what the API sends.
        contentSecurityPolicy: { contentSecurityPolicy: contentSecurityPolicy(config, topology), override: true },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: frameOption(topology.securityHeaders['x-frame-options']), override: true },
        referrerPolicy: { referrerPolicy: referrerPolicy(topology.securityHeaders['referrer-policy']), override: true },
        strictTransportSecurity: { accessControlMaxAge: Duration.days(730), includeSubdomains: true, preload: true, override: true },
      },
    });
    const spa = new cloudfront.Function(this, 'SpaRewrite', {
      code: cloudfront.FunctionCode.fromInline(SPA_REWRITE),
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      comment: 'Serve index.html for the UI routes (never for /v1/)',
    });

    const waf = new WebAcl(this, 'Waf', {
      scope: 'CLOUDFRONT',
      name: `${config.prefix}edge-${config.name}`,
      rateLimit: config.wafRateLimit,
      logsKey: newLogsKey(this, 'LogsKey', `Ledgerline ${config.name}: edge WAF logs`),
      logRetentionDays: config.logRetentionDays,
    });

    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: `Ledgerline ${config.name}`,
      domainNames: [config.domainName],
      certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', config.cloudFrontCertificateArn),
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      sslSupportMethod: cloudfront.SSLMethod.SNI,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: config.priceClass as cloudfront.PriceClass,
      defaultRootObject: 'index.html',
      webAclId: waf.acl.attrArn,
      enableLogging: true,
      logBucket: logs,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.uiBucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: headers,
        functionAssociations: [{ function: spa, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST }],
      },
      additionalBehaviors: {
        '/v1/*': {
          origin: new origins.HttpOrigin(config.apiOriginDomain, {
            protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
          }),
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
          // With caching disabled, AllViewerExceptHostHeader also forwards Authorization.
          cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
          originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
          responseHeadersPolicy: headers,
        },
      },
    });

    // CDK scopes the UI key's CloudFront statement to this account's distributions (not this
    // one's id) because key, bucket and distribution would otherwise depend on each other.
    Annotations.of(this).acknowledgeWarning(
      '@aws-cdk/aws-cloudfront-origins:wildcardKeyPolicyForOac',
      'The key policy allows CloudFront only for distributions of this account (aws:SourceArn), and only this stack uses the key.',
    );
    suppress(this.distribution, [
      { id: 'AwsSolutions-CFR1', reason: 'Staff sign in from wherever the bank operates; access is limited by Cognito (MFA) and the WAF, not by country.' },
    ]);

    new CfnOutput(this, 'UiBucketName', { value: this.uiBucket.bucketName });
    new CfnOutput(this, 'DistributionId', { value: this.distribution.distributionId });
    new CfnOutput(this, 'SiteUrl', { value: `https://${config.domainName}` });
  }
}
