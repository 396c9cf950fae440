// The edge: OAC to the UI bucket, /v1/* to the ALB uncached, headers, SPA fallback, WAF.
import * as assert from 'node:assert/strict';
import * as vm from 'node:vm';
import { it } from 'node:test';
import { Synthesized, resources, topology } from '../support';
import { assertWebAcl } from './services';

type Props = Record<string, any>;

const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
const ALL_VIEWER_EXCEPT_HOST_HEADER = 'b689b0a8-53d0-40ab-baf2-68738e2966ac';

export function edgeCases(s: Synthesized): void {
  const t = () => s.template(s.edge);
  const cfg = s.config.env;
  const dist = (): Props => (resources(t(), 'AWS::CloudFront::Distribution')[0][1].Properties as Props).DistributionConfig;

  it('lives in us-east-1, where CLOUDFRONT WebACLs must be', () => {
    assert.equal(s.edge.region, 'us-east-1');
  });

  it('serves the UI bucket through Origin Access Control only', () => {
    const [[oacId, oac]] = resources(t(), 'AWS::CloudFront::OriginAccessControl') as any;
    assert.equal(oac.Properties.OriginAccessControlConfig.OriginAccessControlOriginType, 's3');
    assert.equal(oac.Properties.OriginAccessControlConfig.SigningBehavior, 'always');
    const s3Origin = dist().Origins.find((o: Props) => o.S3OriginConfig);
    assert.deepEqual(s3Origin.OriginAccessControlId, { 'Fn::GetAtt': [oacId, 'Id'] });
    assert.equal(s3Origin.S3OriginConfig.OriginAccessIdentity, '');
    t().hasResourceProperties('AWS::S3::Bucket', {
      BucketName: `${cfg.prefix}ui-${cfg.account}-${cfg.name}`,
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
  });

  it('forwards /v1/* to the ALB over HTTPS, uncached, with viewer headers (Authorization included), all methods', () => {
    const cfgDist = dist();
    const [behaviour] = cfgDist.CacheBehaviors;
    assert.equal(behaviour.PathPattern, '/v1/*');
    assert.equal(behaviour.CachePolicyId, CACHING_DISABLED);
    assert.equal(behaviour.OriginRequestPolicyId, ALL_VIEWER_EXCEPT_HOST_HEADER);
    assert.deepEqual(behaviour.AllowedMethods.sort(), ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']);
    assert.equal(behaviour.ViewerProtocolPolicy, 'https-only');
    const origin = cfgDist.Origins.find((o: Props) => o.Id === behaviour.TargetOriginId);
    assert.equal(origin.DomainName, cfg.apiOriginDomain);
    assert.equal(origin.CustomOriginConfig.OriginProtocolPolicy, 'https-only');
    assert.deepEqual(origin.CustomOriginConfig.OriginSSLProtocols, ['TLSv1.2']);
  });

  it('uses the certificate, aliases, TLS policy, HTTP/3, logging and price class from context', () => {
    const d = dist();
    assert.deepEqual(d.Aliases, [cfg.domainName]);
    assert.equal(d.ViewerCertificate.AcmCertificateArn, cfg.cloudFrontCertificateArn);
    assert.equal(d.ViewerCertificate.MinimumProtocolVersion, 'TLSv1.2_2021');
    assert.equal(d.HttpVersion, 'http2and3');
    assert.equal(d.PriceClass, cfg.priceClass);
    assert.equal(d.DefaultRootObject, 'index.html');
    assert.ok(d.Logging.Bucket);
    assert.equal(d.CustomErrorResponses, undefined, 'no error-response rewriting (it would rewrite API 403/404s)');
    const [[, logBucket]] = resources(t(), 'AWS::S3::Bucket').filter(([id]) => id.startsWith('AccessLogs')) as any;
    assert.equal(logBucket.Properties.OwnershipControls.Rules[0].ObjectOwnership, 'BucketOwnerPreferred');
  });

  it('sends the product security headers with Cognito in connect-src', () => {
    const [[, policy]] = resources(t(), 'AWS::CloudFront::ResponseHeadersPolicy') as any;
    const h = policy.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig;
    const csp = h.ContentSecurityPolicy.ContentSecurityPolicy;
    // The product's own policy (topology.json, from api_kit::observe), then Cognito.
    const product = topology().securityHeaders;
    assert.ok(csp.startsWith(`${product['content-security-policy']}; `), csp);
    assert.equal(h.FrameOptions.FrameOption, product['x-frame-options']);
    assert.equal(h.ReferrerPolicy.ReferrerPolicy, product['referrer-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /img-src 'self' data:/);
    assert.match(csp, /style-src 'self' 'unsafe-inline'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /base-uri 'none'/);
    assert.ok(csp.includes(`connect-src 'self' https://cognito-idp.${cfg.region}.amazonaws.com https://${cfg.cognitoDomainPrefix}.auth.${cfg.region}.amazoncognito.com`));
    assert.equal(h.ContentTypeOptions.Override, true);
    assert.equal(h.FrameOptions.FrameOption, 'DENY');
    assert.equal(h.ReferrerPolicy.ReferrerPolicy, 'no-referrer');
    assert.deepEqual(h.StrictTransportSecurity, { AccessControlMaxAgeSec: 63072000, IncludeSubdomains: true, Preload: true, Override: true });
  });

  it('rewrites only extension-less non-API paths to /index.html (viewer request, default behaviour)', () => {
    const [[fnId, fn]] = resources(t(), 'AWS::CloudFront::Function') as any;
    const assoc = dist().DefaultCacheBehavior.FunctionAssociations;
    assert.deepEqual(assoc, [{ EventType: 'viewer-request', FunctionARN: { 'Fn::GetAtt': [fnId, 'FunctionARN'] } }]);
    assert.equal(dist().CacheBehaviors[0].FunctionAssociations, undefined);
    const rewrite = (uri: string): string => {
      const sandbox: Props = {};
      vm.runInNewContext(`${fn.Properties.FunctionCode}; result = handler({ request: { uri: ${JSON.stringify(uri)} } }).uri;`, sandbox);
      return sandbox.result;
    };
    assert.equal(rewrite('/clients/123'), '/index.html');
    assert.equal(rewrite('/callback'), '/index.html');
    assert.equal(rewrite('/assets/app-1a2b.js'), '/assets/app-1a2b.js');
    assert.equal(rewrite('/v1/clients'), '/v1/clients');
    assert.equal(rewrite('/favicon.ico'), '/favicon.ico');
  });

  it('attaches a CLOUDFRONT WebACL (managed groups + rate limit) that logs', () => {
    const [[aclId, acl]] = resources(t(), 'AWS::WAFv2::WebACL') as any;
    assertWebAcl(acl.Properties, 'CLOUDFRONT', cfg.wafRateLimit);
    assert.deepEqual(dist().WebACLId, { 'Fn::GetAtt': [aclId, 'Arn'] });
    t().hasResourceProperties('AWS::WAFv2::LoggingConfiguration', { ResourceArn: { 'Fn::GetAtt': [aclId, 'Arn'] } });
  });
}
