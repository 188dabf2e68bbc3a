/**
 * `verdict gate release`: the CI release gate. Builds the `release.deploy` envelope from the files a
 * pipeline has (or reads one with --input), asks Verdict, reports in the pipeline's format and exits
 * 0 allowed, 1 denied, 2 could not decide — never 0 unless Verdict answered allow.
 */
import { appendFile as appendFileFs, readFile as readFileFs } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { VerdictClient } from '../../packages/sdk/src/index.ts';
import { buildReleaseEnvelope, GateInputError, type ReleaseEnvelope, readEnvelope } from '../gate/release.ts';
import {
  EXIT_UNDECIDED,
  exitCodeOf,
  type GateFormat,
  type GateOutcome,
  githubAnnotations,
  githubSummary,
  isGateFormat,
  jsonReport,
  junitReport,
  sarifReport,
  textReport,
} from '../gate/report.ts';
import { httpUrl, runAsMain, STANDARD_IO } from './client.ts';

export const GATE_USAGE = `usage: verdict gate release [options]

Asks Verdict whether a model release may be deployed (action release.deploy on a model_release).
Exit codes: 0 allowed, 1 denied, 2 could not decide (bad input, Verdict unreachable, a 5xx or any
other non-answer). Never 0 unless Verdict answered allow.

the release, from the pipeline's files (YAML or JSON by extension):
  --model-card FILE     model card (resource.properties.model_card; its name@version, risk_tier and
                        author are used when the flags below are absent)
  --evals FILE          evaluation results: {"metric": value} (or {"metrics": …}, or [{name, value}])
  --approvals FILE      [{"by": …, "role": …}]
  --licenses FILE       ["Apache-2.0", …]
  --lineage FILE        {"datasets": […], "training_run": …}
  --incidents FILE      open incidents: [{"id": …, "severity": "sev2"}] ([] when none)
  --release ID          resource.id (default: the model card's name@version)
  --risk-tier N         1, 2 or 3
  --author NAME         who authored the release (nobody approves their own)
  --pipeline ID         subject.id (default $GITHUB_REPOSITORY, $CI_PROJECT_PATH, $BUILD_REPOSITORY_NAME or "ci")
or a ready envelope:
  --input FILE          {subject, action, resource, context}
  --environment ENV     context.environment (a missing one counts as prod)

  --format FMT          text (default), json, github, junit, sarif
  --output FILE         write the report there instead of stdout
  --url URL             Verdict's base URL (default $VERDICT_URL)
  --token TOKEN         bearer token with decisions:evaluate (default $VERDICT_TOKEN)
  --timeout-ms N        default 10000

--format github prints ::error annotations (one per failed control) and appends a Markdown summary to
$GITHUB_STEP_SUMMARY when it is set.`;

/** What the gate needs from its process. */
export interface GateIo {
  env: Record<string, string | undefined>;
  /** What the files' relative paths are relative to (default: the working directory). */
  cwd?: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readFile?: (path: string) => Promise<string>;
  appendFile?: (path: string, text: string) => Promise<void>;
  writeFile?: (path: string, text: string) => Promise<void>;
  fetch?: typeof fetch;
}

const OPTIONS = {
  'model-card': { type: 'string' },
  evals: { type: 'string' },
  approvals: { type: 'string' },
  licenses: { type: 'string' },
  lineage: { type: 'string' },
  incidents: { type: 'string' },
  release: { type: 'string' },
  'risk-tier': { type: 'string' },
  author: { type: 'string' },
  pipeline: { type: 'string' },
  input: { type: 'string' },
  environment: { type: 'string' },
  format: { type: 'string' },
  output: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  'timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `verdict gate <argv…>`; resolves the exit code. */
export async function gateCommand(argv: string[], io: GateIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout(`${GATE_USAGE}\n`);
    return 0;
  }
  if (sub !== 'release') {
    io.stderr(`verdict gate: unknown gate "${sub ?? ''}"\n${GATE_USAGE}\n`);
    return EXIT_UNDECIDED;
  }
  let values: {
    [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
  };
  try {
    ({ values } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: false, strict: true }));
  } catch (err) {
    io.stderr(`verdict gate: ${(err as Error).message}\n${GATE_USAGE}\n`);
    return EXIT_UNDECIDED;
  }
  if (values.help) {
    io.stdout(`${GATE_USAGE}\n`);
    return 0;
  }
  const format = values.format ?? 'text';
  if (!isGateFormat(format)) {
    io.stderr(`verdict gate: --format must be text, json, github, junit or sarif\n`);
    return EXIT_UNDECIDED;
  }
  // Paths stay as given in the reports (SARIF locates controls in them); only reads resolve them.
  const readAt = io.readFile ?? ((file: string) => readFileFs(file, 'utf8'));
  const read = (file: string) => readAt(path.resolve(io.cwd ?? process.cwd(), file));
  const sources = {
    modelCard: values['model-card'],
    evals: values.evals,
    approvals: values.approvals,
    licenses: values.licenses,
    lineage: values.lineage,
    incidents: values.incidents,
  };
  const outcome = await decideRelease(values, sources, read, io);
  const output =
    values.output === undefined ? undefined : path.resolve(io.cwd ?? process.cwd(), values.output);
  await report(format, outcome, output, io);
  return exitCodeOf(outcome);
}

async function decideRelease(
  values: Record<string, string | boolean | undefined>,
  sources: Record<string, string | undefined>,
  read: (file: string) => Promise<string>,
  io: GateIo,
): Promise<GateOutcome> {
  const str = (key: string) => values[key] as string | undefined;
  let envelope: ReleaseEnvelope;
  try {
    const fromFiles = Object.values(sources).some((v) => v !== undefined);
    if (str('input') && fromFiles)
      throw new GateInputError('--input cannot be combined with the release files');
    if (str('input')) {
      envelope = await readEnvelope(str('input')!, str('environment'), read);
    } else if (fromFiles) {
      envelope = await buildReleaseEnvelope(
        sources,
        {
          release: str('release'),
          riskTier: str('risk-tier'),
          author: str('author'),
          pipeline:
            str('pipeline') ??
            io.env.GITHUB_REPOSITORY ??
            io.env.CI_PROJECT_PATH ??
            io.env.BUILD_REPOSITORY_NAME,
          environment: str('environment'),
        },
        read,
      );
    } else {
      throw new GateInputError('nothing to decide: pass --input FILE or the release files (--model-card …)');
    }
  } catch (err) {
    if (err instanceof GateInputError)
      return {
        kind: 'undecided',
        reason: `bad input: ${err.message}`,
        sources,
        environment: str('environment'),
      };
    throw err;
  }
  const url = str('url') ?? io.env.VERDICT_URL;
  const token = str('token') ?? io.env.VERDICT_TOKEN;
  if (!url || !token) {
    return {
      kind: 'undecided',
      reason: 'no Verdict to ask: set --url/--token or VERDICT_URL/VERDICT_TOKEN',
      envelope,
      sources,
    };
  }
  try {
    httpUrl(url, str('url') === undefined ? 'VERDICT_URL' : '--url');
  } catch (err) {
    return { kind: 'undecided', reason: `bad input: ${(err as Error).message}`, envelope, sources };
  }
  const timeoutMs = str('timeout-ms') === undefined ? 10_000 : Number(str('timeout-ms'));
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    return {
      kind: 'undecided',
      reason: 'bad input: --timeout-ms is not a positive integer',
      envelope,
      sources,
    };
  }
  const client = new VerdictClient({ url, token, timeoutMs, ...(io.fetch ? { fetch: io.fetch } : {}) });
  const traceparent = io.env.TRACEPARENT;
  const decision = await client.decide(envelope, traceparent ? { traceparent } : {});
  if (!decision.decided) return { kind: 'undecided', reason: decision.error.message, envelope, sources };
  // NOTE: exit 0 needs allow === true from an answer Verdict made; anything else is 1 or 2.
  return { kind: decision.allow === true ? 'allow' : 'deny', envelope, decision, sources };
}

async function report(format: GateFormat, outcome: GateOutcome, output: string | undefined, io: GateIo) {
  const rendered = {
    text: textReport,
    json: jsonReport,
    github: (o: GateOutcome) => `${githubAnnotations(o)}${textReport(o)}`,
    junit: junitReport,
    sarif: sarifReport,
  }[format](outcome);
  if (output) {
    const write = io.writeFile ?? (await import('node:fs/promises')).writeFile;
    await write(output, rendered);
    io.stdout(textReport(outcome));
  } else {
    io.stdout(rendered);
  }
  if (format === 'github' && io.env.GITHUB_STEP_SUMMARY) {
    await (io.appendFile ?? appendFileFs)(io.env.GITHUB_STEP_SUMMARY, githubSummary(outcome));
  }
}

if (import.meta.main)
  runAsMain('verdict gate', () => gateCommand(process.argv.slice(2), STANDARD_IO), EXIT_UNDECIDED);
