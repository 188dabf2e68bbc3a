/**
 * The V1 wire: every request and response schema of the HTTP API, by surface, with their `Static`
 * types. Names carry the version (`DecisionRequestV1`, `ProblemV1`), as OPA's wire types do; route
 * plugins reference these and declare nothing of their own. The SDK's compile-time contract
 * (test/sdk/wire-types.ts) reads them from here.
 */
export * from './audit.ts';
export * from './authzen.ts';
export * from './bundles.ts';
export * from './decisions.ts';
export * from './grants.ts';
export * from './impact.ts';
export * from './opa.ts';
export * from './problem.ts';
export * from './service.ts';
