/** Test support for the release gate: its CLI as a child process, and the report validators. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { XmlDocument, XsdValidator } from 'libxml2-wasm';
import { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import { loadBundleFile } from '../../src/bundles/active.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict } from '../../src/create-verdict.ts';
import type { DecisionRecorder } from '../../src/decisions/types.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

export const root = path.resolve(import.meta.dirname, '../..');

/** The example release's files (deploy/ci/release, copied into a test's folder), as `verdict gate release` options. */
export const RELEASE_FILES = [
  '--model-card',
  'release/model-card.yaml',
  '--evals',
  'release/evals.json',
  '--approvals',
  'release/approvals.json',
  '--licenses',
  'release/licenses.json',
  '--lineage',
  'release/lineage.json',
  '--incidents',
  'release/incidents.json',
];

/** The CLI entry that runs `verdict …` from a checkout. */
export const VERDICT_CLI = ['src/cli/gate.ts'];

/** `verdict gate …` words → the node command that runs them from this checkout. */
export function cliArgs(words: string[]): string[] {
  if (words[0] !== 'verdict' || words[1] !== 'gate')
    throw new Error(`not a verdict gate command: ${words.join(' ')}`);
  return [path.join(root, ...VERDICT_CLI), ...words.slice(2)];
}

/** Runs the CLI without blocking this process (the Verdict under test lives in it). */
export function runVerdict(
  words: string[],
  options: { cwd: string; env: Record<string, string | undefined> },
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      cliArgs(words),
      { cwd: options.cwd, env: options.env as NodeJS.ProcessEnv, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const status = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ status, stdout, stderr });
      },
    );
  });
}

/** Validates a JUnit document against test/fixtures/schemas/junit.xsd; returns the errors. */
export function junitErrors(document: string): string[] {
  const schema = XmlDocument.fromString(
    readFileSync(path.join(root, 'test/fixtures/schemas/junit.xsd'), 'utf8'),
  );
  const validator = XsdValidator.fromDoc(schema);
  const doc = XmlDocument.fromString(document);
  try {
    validator.validate(doc);
    return [];
  } catch (err) {
    return [(err as Error).message];
  } finally {
    doc.dispose();
    validator.dispose();
    schema.dispose();
  }
}

/**
 * Validates a SARIF log against the SARIF 2.1.0 (rtm.5) JSON schema that @microsoft/jest-sarif ships.
 * The schema is draft-04; its only draft-04-only keyword is the root `id`, read here as `$id`.
 */
export function sarifErrors(log: unknown): string[] {
  const require = createRequire(import.meta.url);
  const file = path.join(
    path.dirname(require.resolve('@microsoft/jest-sarif/package.json')),
    'lib/schemas/sarif-2.1.0-rtm.5.json',
  );
  const {
    $schema: _draft,
    id,
    ...schema
  } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  // unicodeRegExp off: the schema's language-tag pattern is a valid ECMAScript regex only without the u flag.
  const ajv = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  const validate = ajv.compile({ ...schema, $id: id as string });
  return validate(log) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

/**
 * A live Verdict on the built-in bundle for the gate's tests, on 127.0.0.1, whose clock is fixed
 * outside the change-freeze windows of policies/data.json (so a prod release's answer does not depend
 * on the day the tests run), recording into memory (or into `recorder`).
 */
export async function startVerdict(options: { recorder?: DecisionRecorder } = {}) {
  const secret = randomBytes(32).toString('base64url');
  const config = resolveConfig({
    VERDICT_DATA_DIR: '/tmp/verdict-test-data',
    VERDICT_RATE_LIMIT_MAX: '100000000',
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
  });
  const verdict = await createVerdict(config, {
    database: null,
    recorder: options.recorder ?? new MemoryRecorder(),
    keys: { kind: 'secret', secret, algorithms: ['HS256'] },
    engine: await loadBundleFile(DEFAULT_BUNDLE),
    clock: () => new Date('2026-11-26T12:00:00.000Z'),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  const url = await verdict.app.listen({ port: 0, host: '127.0.0.1' });
  const token = mintToken(secret, {
    sub: 'release-ci',
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    ttlSeconds: 3600,
    scopes: ['decisions:evaluate'],
  });
  return { url, token, close: () => verdict.close() };
}
