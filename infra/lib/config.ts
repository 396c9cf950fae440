// Context parsing: one typed, validated configuration per environment (cdk.json `context`,
// selected with `-c env=staging|production`). Synth fails with a message naming every
// missing or malformed value instead of deploying half a configuration.
import * as path from 'node:path';

export interface SftpConfig {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly hostKey: string;
  readonly inbox: string;
  readonly outbox: string;
  readonly archive: string;
  readonly error: string;
  readonly scheduleMinutes: number;
}

export interface EnvironmentConfig {
  readonly name: string;
  readonly account: string;
  readonly region: string;
  readonly availabilityZones: string[];
  readonly prefix: string;
  readonly domainName: string;
  readonly apiOriginDomain: string;
  readonly albCertificateArn: string;
  readonly cloudFrontCertificateArn: string;
  readonly cognitoDomainPrefix: string;
  readonly alarmEmail: string;
  /** IAM principal ARNs that may assume the operator role; empty: the account root. */
  readonly operatorPrincipals: string[];
  readonly natGateways: number;
  readonly minTasks: number;
  readonly maxTasks: number;
  readonly auroraMinCapacity: number;
  readonly auroraMaxCapacity: number;
  readonly backupRetentionDays: number;
  readonly logRetentionDays: number;
  /** 0 keeps the archive forever. */
  readonly eventArchiveRetentionDays: number;
  readonly wafRateLimit: number;
  readonly priceClass: string;
  readonly mailFrom: string;
  readonly mailModel: string;
  readonly sftp: SftpConfig;
}

export interface AppConfig {
  readonly env: EnvironmentConfig;
  readonly environments: EnvironmentConfig[];
  readonly githubRepository: string;
  readonly imageTag: string;
  /** Absolute directory holding `<name>/bootstrap.zip` for each Lambda. */
  readonly lambdaAssetsDir: string;
  readonly lambdaArchitecture: 'x86_64' | 'arm64';
}

/** The region every CLOUDFRONT-scoped WAF WebACL (and so the Edge stack) must live in. */
export const EDGE_REGION = 'us-east-1';

/** CloudWatch Logs accepts only these retention periods. */
const LOG_RETENTIONS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

type Node = { tryGetContext(key: string): unknown };

class Errors {
  readonly list: string[] = [];
  add(message: string): void {
    this.list.push(message);
  }
}

function str(o: Record<string, unknown>, key: string, where: string, errors: Errors, pattern?: RegExp): string {
  const v = o[key];
  if (typeof v !== 'string' || v.trim() === '') {
    errors.add(`${where}.${key}: a non-empty string is required`);
    return '';
  }
  if (pattern && !pattern.test(v)) errors.add(`${where}.${key}: "${v}" does not match ${pattern}`);
  return v;
}

function num(o: Record<string, unknown>, key: string, where: string, errors: Errors, min = 0): number {
  // Context given on the command line arrives as a string.
  const raw = o[key];
  const v = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    errors.add(`${where}.${key}: a number >= ${min} is required`);
    return min;
  }
  return v;
}

function obj(v: unknown, where: string, errors: Errors): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    errors.add(`${where}: an object is required`);
    return {};
  }
  return v as Record<string, unknown>;
}

function parseEnvironment(name: string, raw: unknown, errors: Errors): EnvironmentConfig {
  const where = `environments.${name}`;
  const o = obj(raw, where, errors);
  const azs = o.availabilityZones;
  const availabilityZones = Array.isArray(azs) && azs.every((a) => typeof a === 'string') ? (azs as string[]) : [];
  if (availabilityZones.length < 2) errors.add(`${where}.availabilityZones: at least two explicit zones are required`);
  const ops = o.operatorPrincipals ?? [];
  const operatorPrincipals = Array.isArray(ops) && ops.every((a) => typeof a === 'string') ? (ops as string[]) : [];
  if (!Array.isArray(ops)) errors.add(`${where}.operatorPrincipals: a list of IAM principal ARNs is required`);
  const region = str(o, 'region', where, errors, /^[a-z]{2}(-[a-z]+)+-\d$/);
  for (const az of availabilityZones) {
    if (!az.startsWith(region)) errors.add(`${where}.availabilityZones: ${az} is not in ${region}`);
  }
  const s = obj(o.sftp, `${where}.sftp`, errors);
  const sw = `${where}.sftp`;
  const config: EnvironmentConfig = {
    name,
    account: str(o, 'account', where, errors, /^\d{12}$/),
    region,
    availabilityZones,
    prefix: str(o, 'prefix', where, errors, /^[a-z0-9-]+$/),
    domainName: str(o, 'domainName', where, errors),
    apiOriginDomain: str(o, 'apiOriginDomain', where, errors),
    albCertificateArn: str(o, 'albCertificateArn', where, errors, /^arn:aws[a-z-]*:acm:/),
    cloudFrontCertificateArn: str(o, 'cloudFrontCertificateArn', where, errors, /^arn:aws[a-z-]*:acm:us-east-1:/),
    cognitoDomainPrefix: str(o, 'cognitoDomainPrefix', where, errors, /^[a-z0-9-]+$/),
    alarmEmail: str(o, 'alarmEmail', where, errors, /@/),
    operatorPrincipals,
    natGateways: num(o, 'natGateways', where, errors, 1),
    minTasks: num(o, 'minTasks', where, errors, 2),
    maxTasks: num(o, 'maxTasks', where, errors, 2),
    auroraMinCapacity: num(o, 'auroraMinCapacity', where, errors, 0),
    auroraMaxCapacity: num(o, 'auroraMaxCapacity', where, errors, 1),
    backupRetentionDays: num(o, 'backupRetentionDays', where, errors, 1),
    logRetentionDays: num(o, 'logRetentionDays', where, errors, 1),
    eventArchiveRetentionDays: num(o, 'eventArchiveRetentionDays', where, errors, 0),
    wafRateLimit: num(o, 'wafRateLimit', where, errors, 10),
    priceClass: str(o, 'priceClass', where, errors, /^PriceClass_(100|200|All)$/),
    mailFrom: str(o, 'mailFrom', where, errors, /@/),
    mailModel: str(o, 'mailModel', where, errors),
    sftp: {
      host: str(s, 'host', sw, errors),
      port: num(s, 'port', sw, errors, 1),
      user: str(s, 'user', sw, errors),
      hostKey: str(s, 'hostKey', sw, errors),
      inbox: str(s, 'inbox', sw, errors),
      outbox: str(s, 'outbox', sw, errors),
      archive: str(s, 'archive', sw, errors),
      error: str(s, 'error', sw, errors),
      scheduleMinutes: num(s, 'scheduleMinutes', sw, errors, 1),
    },
  };
  if (config.maxTasks < config.minTasks) errors.add(`${where}.maxTasks: must be >= minTasks`);
  if (config.auroraMaxCapacity < config.auroraMinCapacity) errors.add(`${where}.auroraMaxCapacity: must be >= auroraMinCapacity`);
  if (!LOG_RETENTIONS.includes(config.logRetentionDays)) {
    errors.add(`${where}.logRetentionDays: CloudWatch Logs accepts only ${LOG_RETENTIONS.join(', ')}`);
  }
  if (config.backupRetentionDays > 35) errors.add(`${where}.backupRetentionDays: Aurora keeps at most 35 days`);
  if (config.natGateways > config.availabilityZones.length) errors.add(`${where}.natGateways: at most one per zone`);
  return config;
}

/** Reads and validates the context; throws one error listing every problem. */
export function loadConfig(node: Node, infraDir: string): AppConfig {
  const errors = new Errors();
  const envName = (node.tryGetContext('env') as string | undefined) ?? 'staging';
  const envs = obj(node.tryGetContext('environments'), 'environments', errors);
  const environments = Object.entries(envs).map(([name, raw]) => parseEnvironment(name, raw, errors));
  const env = environments.find((e) => e.name === envName);
  if (!env) errors.add(`env: "${envName}" is not one of environments (${Object.keys(envs).join(', ')})`);
  const top = {
    githubRepository: node.tryGetContext('githubRepository'),
    imageTag: node.tryGetContext('imageTag') ?? 'unset',
    lambdaAssetsDir: node.tryGetContext('lambdaAssetsDir') ?? '../target/lambda',
    lambdaArchitecture: node.tryGetContext('lambdaArchitecture') ?? 'x86_64',
  } as Record<string, unknown>;
  const githubRepository = str(top, 'githubRepository', 'context', errors, /^[\w.-]+\/[\w.-]+$/);
  const imageTag = str(top, 'imageTag', 'context', errors, /^[\w.-]{1,128}$/);
  const lambdaAssetsDir = str(top, 'lambdaAssetsDir', 'context', errors);
  const arch = str(top, 'lambdaArchitecture', 'context', errors, /^(x86_64|arm64)$/);
  if (errors.list.length > 0) {
    throw new Error(`Invalid CDK context (cdk.json or -c):\n  - ${errors.list.join('\n  - ')}`);
  }
  return {
    env: env!,
    environments,
    githubRepository,
    imageTag,
    lambdaAssetsDir: path.resolve(infraDir, lambdaAssetsDir),
    lambdaArchitecture: arch as 'x86_64' | 'arm64',
  };
}
