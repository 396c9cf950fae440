// Test fixture: placeholder Lambda zips in a temporary directory, and one synthesized
// app per environment with the context of cdk.json (as `cdk synth -c env=...` sees it).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Aspects, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { LedgerlineStacks, buildApp } from '../lib/app';
import { Topology, loadTopology } from '../lib/topology';

export const INFRA_DIR = path.join(__dirname, '..');
export const ENVIRONMENTS = ['staging', 'production'] as const;
export const LAMBDA_PACKAGES = ['relay-lambda', 'projector-lambda', 'mail-lambda', 'sftp-lambda', 'sign-in-lambda', 'sign-in-audit-lambda'];

/** A directory laid out like target/lambda, with tiny zips instead of built Rust. */
export function placeholderLambdas(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledgerline-lambdas-'));
  // A valid, empty zip (end-of-central-directory record only).
  const emptyZip = Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);
  for (const name of LAMBDA_PACKAGES) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, 'bootstrap.zip'), emptyZip);
  }
  return dir;
}

export function cdkContext(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(INFRA_DIR, 'cdk.json'), 'utf8')).context;
}

export interface Synthesized extends LedgerlineStacks {
  readonly envName: string;
  template(stack: Stack): Template;
}

const cache = new Map<string, Synthesized>();
const lambdas = placeholderLambdas();

/** The whole app for one environment, with the cdk-nag Aspect as bin/app.ts applies it. */
export function synth(envName: string, overrides: Record<string, unknown> = {}): Synthesized {
  const key = `${envName}:${JSON.stringify(overrides)}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const app = new App({ context: { ...cdkContext(), env: envName, lambdaAssetsDir: lambdas, ...overrides } });
  const stacks = buildApp(app, INFRA_DIR);
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  const templates = new Map<Stack, Template>();
  const result: Synthesized = {
    ...stacks,
    envName,
    template(stack: Stack): Template {
      let t = templates.get(stack);
      if (!t) {
        t = Template.fromStack(stack);
        templates.set(stack, t);
      }
      return t;
    },
  };
  cache.set(key, result);
  return result;
}

export function topology(): Topology {
  return loadTopology(path.join(INFRA_DIR, 'topology.json'));
}

/** Resources of one type in a template, by logical id. */
export function resources(t: Template, type: string): [string, { Properties?: Record<string, any>; Metadata?: Record<string, any> }][] {
  return Object.entries(t.findResources(type));
}
