import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type EvidenceKeys,
  type EvidenceReport,
  keysFromJwks,
  keysFromPem,
  verifyEvidence,
} from '../evidence/verify.ts';

/** Where the command writes: stdout and stderr by default (tests pass their own). */
export interface EvidenceIo {
  /** What relative paths are relative to (default: the working directory). */
  cwd?: string;
  out(line: string): void;
  err(line: string): void;
}

export const EVIDENCE_USAGE = `usage: verdict evidence verify FILE [--key PEM|PEM-FILE] [--jwks URL] [--json]

Verifies an evidence package (GET /v1/evidence) offline, with no database: the manifest's
signature, every file's hash, the records, the chain segments and their signed checkpoints, the
bundles, and re-evaluates every decision on its own bundle. Exit 0 only when all hold.
  --key   the Ed25519 public (or private) key, PEM text or a PEM file
  --jwks  a JWKS URL, e.g. https://verdict.example.com/v1/evidence/keys
  --json  print the whole report as JSON`;

/** Why a fetch failed, from its cause ("ECONNREFUSED 127.0.0.1:9", "ENOTFOUND …"), not "fetch failed". */
function fetchFailure(err: unknown): string {
  const error = err as Error & { cause?: Error & { code?: string; errors?: Error[] } };
  if (error.name === 'TimeoutError') return 'no answer within 10 s';
  const cause = error.cause;
  if (!cause) return error.message;
  // A refused connection to a host with several addresses is an AggregateError of each attempt.
  const first = cause.errors?.[0] as (Error & { code?: string }) | undefined;
  const detail = cause.message || first?.message || '';
  return [cause.code ?? first?.code, detail].filter(Boolean).join(': ') || error.message;
}

/** Prints the report; the exit code: 0 everything holds, 1 something does not. */
function print(report: EvidenceReport, io: EvidenceIo, json: boolean): number {
  if (json) io.out(JSON.stringify(report, null, 2));
  else {
    const what = report.resource ? `${report.resource.type} ${report.resource.id}` : 'the package';
    if (report.ok) {
      io.out(
        `evidence: OK — ${what}: signature, ${report.decisions} records, chain segments and checkpoints hold; ${report.reEvaluated} decisions re-evaluated on their own bundles and match`,
      );
    } else {
      io.out(`evidence: FAILED — ${what}: ${report.problems.length} problem(s)`);
      for (const p of report.problems) io.out(`  [${p.check}] ${p.where}: ${p.message}`);
    }
    for (const note of report.notes) io.out(`  note: ${note}`);
  }
  return report.ok ? 0 : 1;
}

/**
 * `verdict evidence verify FILE [--key PEM | --jwks URL]`: verifies an evidence package offline
 * (no database): signature, files, records, chain and checkpoints, bundles, and a re-evaluation of
 * every decision. Exit 0 only when all hold, 1 when something does not, 2 when it could not verify
 * (bad usage, unreadable file, no key).
 */
export async function run(argv: readonly string[], io: EvidenceIo = defaultIo): Promise<number> {
  const args = [...argv];
  if (args[0] === 'evidence') args.shift();
  if (args[0] === 'verify') args.shift();
  if (args.includes('--help') || args.includes('-h')) {
    io.out(EVIDENCE_USAGE);
    return 0;
  }
  const option = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const value = args[i + 1];
    args.splice(i, 2);
    return value;
  };
  const json = args.includes('--json');
  if (json) args.splice(args.indexOf('--json'), 1);
  const pem = option('--key');
  const jwks = option('--jwks');
  const file = args[0];
  const usage = (message: string) => {
    io.err(`evidence: ${message}\n${EVIDENCE_USAGE}`);
    return 2;
  };
  if (!file) return usage('no package FILE was given');
  if (args.length > 1) return usage(`one package FILE, not ${args.length}: ${args.join(' ')}`);
  if (pem === undefined && jwks === undefined)
    return usage('no key was given: pass --key PEM (or a PEM file) or --jwks URL');
  const resolve = (p: string) => path.resolve(io.cwd ?? process.cwd(), p);
  let keys: EvidenceKeys = new Map();
  try {
    if (pem !== undefined) {
      const text = pem.includes('-----BEGIN') ? pem : readFileSync(resolve(pem), 'utf8');
      keys = keysFromPem(text);
    }
    if (jwks !== undefined) {
      let response: Response;
      try {
        response = await fetch(jwks, { signal: AbortSignal.timeout(10_000) });
      } catch (err) {
        throw new Error(`cannot fetch the JWKS at ${jwks}: ${fetchFailure(err)}`);
      }
      if (!response.ok) throw new Error(`the JWKS at ${jwks} answered ${response.status}`);
      for (const [kid, key] of keysFromJwks(await response.json())) keys.set(kid, key);
    }
  } catch (err) {
    io.err(`evidence: could not read the key: ${(err as Error).message}`);
    return 2;
  }
  let archive: Buffer;
  try {
    archive = readFileSync(resolve(file));
  } catch (err) {
    io.err(`evidence: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return 2;
  }
  return print(verifyEvidence(archive, keys), io, json);
}

const defaultIo: EvidenceIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`evidence: failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}
