// Assertions over the synthesized templates of both environments. Each environment is
// synthesized once (with cdk-nag), then every concern's cases run against it.
import { describe } from 'node:test';
import { dataCases } from './cases/data';
import { edgeCases } from './cases/edge';
import { eventsCases } from './cases/events';
import { identityCases } from './cases/identity';
import { bootstrapCases, securityCases } from './cases/security';
import { servicesCases } from './cases/services';
import { ENVIRONMENTS, synth } from './support';

for (const envName of ENVIRONMENTS) {
  describe(`${envName}`, () => {
    const s = synth(envName);
    describe('Data', () => dataCases(s));
    describe('Events', () => eventsCases(s));
    describe('Services', () => servicesCases(s));
    describe('Identity', () => identityCases(s));
    describe('Edge', () => edgeCases(s));
    describe('Security and cross-cutting', () => securityCases(s));
    describe('Bootstrap', () => bootstrapCases(s));
  });
}
