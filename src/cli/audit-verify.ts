import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  type CheckpointReport,
  loadCheckpointKey,
  readCheckpointFile,
  verifyCheckpoints,
} from '../audit/checkpoints.ts';
import { type EventVerifyReport, verifyEvents } from '../audit/event-log.ts';
import { type VerifyReport, verifyChains } from '../audit/verify.ts';
import { DEV_ISSUER, DEV_SECRET_FILE, loadOrCreateDevSecret, mintToken } from '../auth/dev-token.ts';
import { configuredKeySource } from '../auth/keys.ts';
import { type Config, resolveConfig } from '../config/resolve-config.ts';
import {
  acquireEmbeddedLock,
  type EmbeddedLockHolder,
  EmbeddedStoreBusyError,
  embeddedStoreHolder,
} from '../store/embedded-lock.ts';
import { openDatabase } from '../store/open-database.ts';

/**
 * Exit codes: 0 verified, 1 a chain is broken or a signed checkpoint does not hold (a rewritten
 * chain), 2 could not verify (nothing was judged).
 */
type ExitCode = 0 | 1 | 2;

const out = (line: string) => process.stdout.write(`audit:verify: ${line}\n`);

type FullReport = VerifyReport & { events?: EventVerifyReport; checkpoints?: CheckpointReport };

function checkpointLine(report: CheckpointReport | undefined): string {
  if (!report?.configured)
    return '; signed checkpoints not checked (no VERDICT_CHECKPOINT_KEY or _PUBLIC_KEY)';
  return `; ${report.checked} signed checkpoints hold (key ${report.keyId}, latest ${report.latest ?? 'none'})`;
}

/**
 * Prints the decision log's report and, when present, the platform events' (waiver, approval and
 * policy changes: `events`, as GET /v1/audit/verify reports them) and the signed checkpoints'.
 */
function printReport(report: FullReport, where: string, seconds: string): ExitCode {
  const events = report.events;
  const decisionsBroken = report.firstBroken;
  const eventsBroken = events && !events.ok ? events.firstBroken : undefined;
  const mismatch = report.checkpoints?.firstMismatch;
  if (!decisionsBroken && !eventsBroken && !mismatch && report.ok && (events?.ok ?? true)) {
    const also = events ? `; ${events.checked} platform events in ${events.writers} chains verified` : '';
    out(
      `OK — ${report.checked} rows in ${report.writers} chains verified${where} in ${seconds} s${also}${checkpointLine(report.checkpoints)}`,
    );
    return 0;
  }
  if (decisionsBroken) {
    // Every break of the window (the report lists the first MAX_BREAKS_REPORTED), then the count.
    for (const broken of report.breaks ?? [decisionsBroken]) {
      out(
        `BROKEN — writer ${broken.writerId} at seq ${broken.seq} (decision ${broken.decisionId ?? 'none'}): ${broken.reason}`,
      );
    }
    const count = report.breakCount ?? 1;
    const listed = report.breaks?.length ?? 1;
    out(
      `${count} break${count === 1 ? '' : 's'} in the decision log${count > listed ? ` (the first ${listed} listed)` : ''}; ${report.checked} rows verified before the first${where}`,
    );
  }
  if (eventsBroken) {
    for (const broken of events?.breaks ?? [eventsBroken]) {
      out(
        `BROKEN — platform events: writer ${broken.writerId} at seq ${broken.seq} (event ${broken.eventId ?? 'none'}): ${broken.reason}`,
      );
    }
    const count = events?.breakCount ?? 1;
    out(
      `${count} break${count === 1 ? '' : 's'} in the platform events; ${events!.checked} events verified before the first${where}`,
    );
  }
  const m = mismatch;
  if (m) {
    const what =
      m.reason === 'rewritten'
        ? `the chain was REWRITTEN: the ${m.chain} chain of writer ${m.writerId} holds ${m.storedHash} at seq ${m.seq}, but ${m.signedHash} was signed there at ${m.signedAt}`
        : m.reason === 'truncated'
          ? `the ${m.chain} chain of writer ${m.writerId} has no row at seq ${m.seq}, signed at ${m.signedAt}`
          : m.reason === 'bad_signature'
            ? `the checkpoint of writer ${m.writerId} at seq ${m.seq} (${m.chain}) has an invalid signature (forged or edited)`
            : `the checkpoint of writer ${m.writerId} at seq ${m.seq} (${m.chain}) was signed by another key`;
    out(`CHECKPOINT FAILED — ${m.reason}: ${what}${where}`);
  }
  if (!decisionsBroken && !eventsBroken && !mismatch) out(`BROKEN — the report says not ok${where}`);
  return 1;
}

/**
 * A short-lived audit:read token the running service accepts: from the configured shared secret,
 * or the embedded development secret it signs with. Undefined when the service trusts an identity
 * provider (no secret to mint with here).
 */
function tokenFor(config: Config): string | undefined {
  const configured = configuredKeySource(config.jwt);
  let secret: string;
  if (configured) {
    if (configured.kind !== 'secret') return undefined;
    secret = configured.secret;
  } else {
    if (!existsSync(path.join(config.dataDir, DEV_SECRET_FILE))) return undefined;
    secret = loadOrCreateDevSecret(config.dataDir).secret;
  }
  return mintToken(secret, {
    sub: 'audit-verify-cli',
    scopes: ['audit:read'],
    ttlSeconds: 300,
    issuer: config.jwt.issuer ?? DEV_ISSUER,
    audience: config.jwt.audience,
  });
}

/**
 * The embedded store is held by a running service: its files on disk lag behind its memory, so
 * reading them here would print a stale (or torn) result. Ask the service instead; when it cannot
 * be asked, refuse — never print a result that may be stale.
 */
async function askService(
  config: Config,
  holder: EmbeddedLockHolder,
  range: { from?: string; to?: string },
): Promise<ExitCode> {
  const refuse = (why: string) => {
    process.stderr.write(
      `audit:verify: refused: the embedded store in ${config.dataDir} is held by another process (${holder.role}, pid ${holder.pid}) and ${why}. Reading its files now could print a stale result. Stop that process and run this again, or ask it: GET /v1/audit/verify with an audit:read token.\n`,
    );
    return 2 as const;
  };
  if (holder.port === undefined) return refuse('it is not listening yet');
  const token = tokenFor(config);
  if (!token) return refuse('no shared or development secret is available here to mint a token for it');
  const host = !holder.host || holder.host === '0.0.0.0' || holder.host === '::' ? '127.0.0.1' : holder.host;
  const url = new URL(`http://${host.includes(':') ? `[${host}]` : host}:${holder.port}/v1/audit/verify`);
  if (range.from) url.searchParams.set('from', range.from);
  if (range.to) url.searchParams.set('to', range.to);
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10 * 60_000),
    });
  } catch (err) {
    return refuse(`it did not answer at ${url.origin} (${(err as Error).cause ?? (err as Error).message})`);
  }
  if (response.status !== 200) {
    const body = (await response.json().catch(() => ({}))) as { code?: string };
    return refuse(`it answered ${response.status} ${body.code ?? ''} at ${url.origin}`.trimEnd());
  }
  const report = (await response.json()) as FullReport;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  return printReport(report, ` by the running service (pid ${holder.pid}, ${url.origin})`, seconds);
}

const AUDIT_VERIFY_USAGE = `usage: verdict audit verify [--from ISO] [--to ISO]   (npm run audit:verify -- …)

Recomputes every hash chain of the configured database (DATABASE_URL, or the embedded store in
$VERDICT_DATA_DIR) and checks the signed checkpoints; the platform events are always checked whole.
  --from, --to   only the decisions recorded in [from, to)
Exit codes: 0 verified, 1 a chain is broken or a checkpoint does not hold, 2 could not verify.`;

/**
 * `npm run audit:verify [-- --from ISO --to ISO]`: recomputes every hash chain of the configured
 * database; prints progress every 100k rows; exits 1 when a chain is broken, 2 when it could not
 * verify. On the embedded store while the service runs, the service is asked (it holds the store).
 */
async function main(argv: string[]): Promise<ExitCode> {
  // NOTE: parsed before the configuration is read: `--help` must never touch the database.
  let values: { from?: string; to?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { from: { type: 'string' }, to: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`audit:verify: ${(err as Error).message}\n${AUDIT_VERIFY_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${AUDIT_VERIFY_USAGE}\n`);
    return 0;
  }
  const range = { from: values.from, to: values.to };
  const config = resolveConfig();
  let release = () => {};
  if (config.databaseUrl === undefined) {
    const holder = embeddedStoreHolder(config.dataDir);
    if (holder) return askService(config, holder, range);
    try {
      // Held while reading, so that a service starting meanwhile is refused instead of writing.
      release = acquireEmbeddedLock(config.dataDir, 'audit:verify').release;
    } catch (err) {
      if (err instanceof EmbeddedStoreBusyError) return askService(config, err.holder, range);
      throw err;
    }
  }
  try {
    const db = await openDatabase(config);
    try {
      const started = performance.now();
      const report = await verifyChains(db, {
        ...range,
        onProgress: (checked) => out(`${checked} rows checked…`),
      });
      // Platform events are never dropped by retention: always checked whole, whatever the range.
      const events = await verifyEvents(db);
      const checkpoints = await verifyCheckpoints(db, loadCheckpointKey(config), {
        ...range,
        extra: config.checkpoint.file ? readCheckpointFile(config.checkpoint.file) : [],
      });
      return printReport(
        { ...report, ok: report.ok && events.ok && checkpoints.ok, events, checkpoints },
        '',
        ((performance.now() - started) / 1000).toFixed(1),
      );
    } finally {
      await db.close();
    }
  } finally {
    release();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`audit:verify: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
