#!/usr/bin/env node
// The Ledgerline CDK app: the Bootstrap stack and, for the environment chosen with
// `-c env=staging|production`, its seven stacks. cdk-nag's AwsSolutions pack checks all.
import * as path from 'node:path';
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildApp } from '../lib/app';

const app = new App();
buildApp(app, path.join(__dirname, '..'));
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
app.synth();
