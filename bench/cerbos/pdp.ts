/**
 * The Cerbos PDP in the benchmark: the pinned binary (`@cerbos/cerbos-linux-x64`, an optional
 * dependency), its policy directory, `cerbos compile` (which also runs the policy tests) and the
 * server's configuration. bench/systems.ts starts it like OPA.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

/** The policies and their `*_test.yaml` suites. */
export const CERBOS_POLICY_DIR = path.join(root, 'bench/cerbos/policies');

/** The pinned binary's path; throws a message saying how to get it when it is absent. */
export function cerbosBinary(): string {
  const binary = path.join(root, 'node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64');
  if (!existsSync(binary)) {
    throw new Error(
      `the Cerbos PDP binary is missing (${path.relative(root, binary)}): it comes with the optional ` +
        'dependency @cerbos/cerbos-linux-x64 (linux x64 only) — run `npm ci` on linux-x64, or leave ' +
        'cerbos-audit and cerbos-off out of --systems',
    );
  }
  return binary;
}

/** What `cerbos compile` reported: suites and test counts. */
export interface CerbosCompileResult {
  suites: number;
  tests: number;
  passed: number;
}

interface CompileJson {
  suites?: {
    summary?: {
      overallResult?: string;
      testsCount?: number;
      resultCounts?: { result: string; count: number }[];
    };
  }[];
}

/**
 * Compiles the policies and runs their test suites (`cerbos compile`); throws with Cerbos's own
 * report when a policy does not compile or a test fails, or when there are no tests at all.
 */
export function compileCerbosPolicies(binary = cerbosBinary()): CerbosCompileResult {
  let out: string;
  try {
    out = execFileSync(binary, ['compile', '--output=json', CERBOS_POLICY_DIR], {
      encoding: 'utf8',
      timeout: 60_000,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`cerbos compile ${CERBOS_POLICY_DIR} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
  const report = JSON.parse(out) as CompileJson;
  const suites = report.suites ?? [];
  let tests = 0;
  let passed = 0;
  for (const suite of suites) {
    tests += suite.summary?.testsCount ?? 0;
    passed += suite.summary?.resultCounts?.find((c) => c.result === 'RESULT_PASSED')?.count ?? 0;
  }
  if (tests === 0 || passed !== tests)
    throw new Error(`cerbos compile: ${passed} of ${tests} policy tests passed:\n${out}`);
  return { suites: suites.length, tests, passed };
}

/**
 * The server's configuration: HTTP (and the gRPC listener Cerbos always opens) on loopback, the
 * policies from disk without watching, and either no audit or the file backend writing decision
 * logs (not access logs: one record per decision, as Verdict keeps) to `auditFile`.
 */
export function cerbosConfig(httpPort: number, grpcPort: number, auditFile: string | null): string {
  return JSON.stringify({
    server: { httpListenAddr: `127.0.0.1:${httpPort}`, grpcListenAddr: `127.0.0.1:${grpcPort}` },
    storage: { driver: 'disk', disk: { directory: CERBOS_POLICY_DIR, watchForChanges: false } },
    audit: auditFile
      ? {
          enabled: true,
          accessLogsEnabled: false,
          decisionLogsEnabled: true,
          backend: 'file',
          file: { path: auditFile },
        }
      : { enabled: false },
  });
}
