// The one source of resource names: topology.json, generated from the Rust `Topology`
// (`crm aws topology --json`). Every table, queue, rule and pool name, key schema and
// queue setting comes from here; nothing in the stacks spells one out.
import * as fs from 'node:fs';

export type AttributeType = 'S' | 'N' | 'B';

export interface KeyAttribute {
  readonly name: string;
  readonly type: AttributeType;
}

export interface TableSpec {
  readonly role: string;
  readonly name: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey: KeyAttribute | null;
  readonly stream: 'NEW_IMAGE' | 'OLD_IMAGE' | 'NEW_AND_OLD_IMAGES' | 'KEYS_ONLY' | null;
}

export interface QueueSpec {
  readonly role: string;
  readonly name: string;
  readonly deadLetterQueue: string;
  readonly fifo: boolean;
  readonly contentBasedDeduplication: boolean;
  /** High-throughput FIFO: deduplication and throughput per message group. */
  readonly highThroughput: boolean;
  readonly visibilityTimeoutSeconds: number;
  readonly maxReceiveCount: number;
}

export interface RuleSpec {
  readonly name: string;
  readonly pattern: Record<string, unknown>;
  readonly messageGroupId: string;
  /** Queue roles. */
  readonly targets: string[];
}

export interface PasswordPolicySpec {
  readonly minimumLength: number;
  readonly maximumLength: number;
  readonly requireLowercase: boolean;
  readonly requireUppercase: boolean;
  readonly requireDigits: boolean;
  readonly requireSymbols: boolean;
  readonly temporaryPasswordValidityDays: number;
}

export interface UserPoolSpec {
  readonly name: string;
  readonly appClient: string;
  readonly groups: string[];
  readonly passwordPolicy: PasswordPolicySpec;
}

/** A load-balancer listener rule (aws_stack::routes): the local front door routes by the same. */
export interface RouteSpec {
  readonly name: string;
  readonly priority: number;
  /** Any method when empty. */
  readonly methods: string[];
  readonly paths: string[];
  readonly target: 'commands' | 'queries' | 'mail' | 'notFound';
}

export const ROUTE_TARGETS = ['commands', 'queries', 'mail', 'notFound'];

export interface Topology {
  readonly prefix: string;
  readonly tables: TableSpec[];
  readonly bus: string;
  readonly queues: QueueSpec[];
  readonly rules: RuleSpec[];
  readonly userPool: UserPoolSpec;
  /** The headers every answer of the product carries, by lower-case name (api_kit::observe). */
  readonly securityHeaders: Record<string, string>;
  readonly routes: RouteSpec[];
}

/** The security headers CloudFront must send as the product does. */
export const SECURITY_HEADERS = ['content-security-policy', 'x-content-type-options', 'x-frame-options', 'referrer-policy'];

class Check {
  readonly errors: string[] = [];
  constructor(private readonly file: string) {}

  field<T>(o: unknown, key: string, where: string, kind: 'string' | 'number' | 'boolean' | 'object' | 'array'): T {
    const v = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined;
    const ok =
      kind === 'array' ? Array.isArray(v) : kind === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v) : typeof v === kind;
    if (!ok) this.errors.push(`${where}.${key}: missing or not a${kind === 'array' || kind === 'object' ? 'n' : ''} ${kind}`);
    return v as T;
  }

  key(o: unknown, key: string, where: string, nullable: boolean): KeyAttribute | null {
    const v = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined;
    if (v === null && nullable) return null;
    this.field(o, key, where, 'object');
    this.field<string>(v, 'name', `${where}.${key}`, 'string');
    const type = this.field<string>(v, 'type', `${where}.${key}`, 'string');
    if (type !== undefined && !['S', 'N', 'B'].includes(type)) this.errors.push(`${where}.${key}.type: "${type}" is not S, N or B`);
    return v as KeyAttribute;
  }

  done(): void {
    if (this.errors.length > 0) {
      throw new Error(`${this.file} is not a valid topology (regenerate it with \`crm aws topology --json\`):\n  - ${this.errors.join('\n  - ')}`);
    }
  }
}

/** Validates parsed topology JSON; throws one error naming every missing field. */
export function parseTopology(raw: unknown, file = 'topology.json'): Topology {
  const c = new Check(file);
  const prefix = c.field<string>(raw, 'prefix', 'topology', 'string');
  const t = (raw ?? {}) as Record<string, unknown>;
  for (const [i, table] of ((c.field<unknown[]>(raw, 'tables', 'topology', 'array') ?? []) as unknown[]).entries()) {
    const w = `tables[${i}]`;
    c.field(table, 'role', w, 'string');
    c.field(table, 'name', w, 'string');
    c.key(table, 'partitionKey', w, false);
    c.key(table, 'sortKey', w, true);
    const stream = (table as Record<string, unknown>)?.stream;
    if (!(stream === null || ['NEW_IMAGE', 'OLD_IMAGE', 'NEW_AND_OLD_IMAGES', 'KEYS_ONLY'].includes(stream as string))) {
      c.errors.push(`${w}.stream: must be null or a DynamoDB stream view type`);
    }
  }
  c.field(raw, 'bus', 'topology', 'string');
  const queueRoles = new Set<string>();
  for (const [i, q] of ((c.field<unknown[]>(raw, 'queues', 'topology', 'array') ?? []) as unknown[]).entries()) {
    const w = `queues[${i}]`;
    queueRoles.add(c.field<string>(q, 'role', w, 'string'));
    c.field(q, 'name', w, 'string');
    c.field(q, 'deadLetterQueue', w, 'string');
    c.field(q, 'fifo', w, 'boolean');
    c.field(q, 'contentBasedDeduplication', w, 'boolean');
    c.field(q, 'highThroughput', w, 'boolean');
    c.field(q, 'visibilityTimeoutSeconds', w, 'number');
    c.field(q, 'maxReceiveCount', w, 'number');
  }
  for (const [i, r] of ((c.field<unknown[]>(raw, 'rules', 'topology', 'array') ?? []) as unknown[]).entries()) {
    const w = `rules[${i}]`;
    c.field(r, 'name', w, 'string');
    c.field(r, 'pattern', w, 'object');
    c.field(r, 'messageGroupId', w, 'string');
    const targets = c.field<unknown[]>(r, 'targets', w, 'array') ?? [];
    for (const target of targets) {
      if (typeof target !== 'string' || !queueRoles.has(target)) c.errors.push(`${w}.targets: "${String(target)}" is not a queue role`);
    }
  }
  const pool = c.field<Record<string, unknown>>(raw, 'userPool', 'topology', 'object');
  c.field(pool, 'name', 'userPool', 'string');
  c.field(pool, 'appClient', 'userPool', 'string');
  c.field(pool, 'groups', 'userPool', 'array');
  const policy = c.field(pool, 'passwordPolicy', 'userPool', 'object');
  for (const k of ['minimumLength', 'maximumLength', 'temporaryPasswordValidityDays']) c.field(policy, k, 'userPool.passwordPolicy', 'number');
  for (const k of ['requireLowercase', 'requireUppercase', 'requireDigits', 'requireSymbols']) c.field(policy, k, 'userPool.passwordPolicy', 'boolean');
  const headers = c.field(raw, 'securityHeaders', 'topology', 'object');
  for (const k of SECURITY_HEADERS) c.field(headers, k, 'securityHeaders', 'string');
  const routes = c.field<unknown[]>(raw, 'routes', 'topology', 'array') ?? [];
  routes.forEach((route, i) => {
    const where = `routes[${i}]`;
    c.field(route, 'name', where, 'string');
    c.field(route, 'priority', where, 'number');
    c.field(route, 'methods', where, 'array');
    c.field(route, 'paths', where, 'array');
    const target = c.field<string>(route, 'target', where, 'string');
    if (typeof target === 'string' && !ROUTE_TARGETS.includes(target)) c.errors.push(`${where}.target: unknown target ${target}`);
  });
  c.done();

  // Every name must carry the prefix, or rebasing it per environment would be wrong.
  const names = [
    ...(t.tables as TableSpec[]).map((x) => x.name),
    t.bus as string,
    ...(t.queues as QueueSpec[]).flatMap((x) => [x.name, x.deadLetterQueue]),
    ...(t.rules as RuleSpec[]).map((x) => x.name),
    (t.userPool as UserPoolSpec).name,
    (t.userPool as UserPoolSpec).appClient,
  ];
  for (const name of names) if (!name.startsWith(prefix)) c.errors.push(`"${name}" does not start with the prefix "${prefix}"`);
  c.done();
  return raw as Topology;
}

export function loadTopology(file: string): Topology {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not JSON: ${(e as Error).message}`);
  }
  return parseTopology(raw, file);
}

/** A topology name rebased from the topology's prefix onto an environment's. */
export function rebase(topology: Topology, prefix: string, name: string): string {
  if (!name.startsWith(topology.prefix)) throw new Error(`"${name}" does not start with "${topology.prefix}"`);
  return prefix + name.slice(topology.prefix.length);
}

export function table(topology: Topology, role: string): TableSpec {
  const found = topology.tables.find((t) => t.role === role);
  if (!found) throw new Error(`topology.json has no table with role "${role}"`);
  return found;
}

export function queue(topology: Topology, role: string): QueueSpec {
  const found = topology.queues.find((q) => q.role === role);
  if (!found) throw new Error(`topology.json has no queue with role "${role}"`);
  return found;
}
