import pino from 'pino';
import { buildApp } from './app.ts';
import { createAuditTrail, verifyChains } from './audit/index.ts';
import { DecisionLogReader } from './audit/queries.ts';
import { DecisionReplayer } from './audit/replay.ts';
import { devTokenBanner, resolveStartupKeys, type StartupKeys } from './auth/dev-token.ts';
import { KeySourceError } from './auth/keys.ts';
import { ActiveBundle, loadBundleFile } from './bundles/active.ts';
import { RevisionStore } from './bundles/revisions.ts';
import { isClusterWorker, runPrimary, workerMetrics } from './cluster.ts';
import { ConfigError, resolveConfig } from './config/index.ts';
import { DecisionService } from './decisions/service.ts';
import type { AuditDeps } from './http/audit-routes.ts';
import { DrainableReadiness, installGracefulShutdown } from './lifecycle/shutdown.ts';
import { observeDecisions } from './observability/decisions.ts';
import { loggerOptions } from './observability/logging.ts';
import { createMetrics, observeAuditWriter, trackActiveBundle } from './observability/metrics.ts';
import { acquireEmbeddedLock, type EmbeddedLock, EmbeddedStoreBusyError } from './store/embedded-lock.ts';
import { type Database, openDatabase } from './store/index.ts';
import { migrate } from './store/migrate.ts';
import { dropExpiredPartitions, ensurePartitions, schedulePartitionMaintenance } from './store/partitions.ts';

/** Process entry: config → bundle → decision service → app → listen → graceful shutdown. */
async function main(): Promise<void> {
  let config: ReturnType<typeof resolveConfig>;
  try {
    config = resolveConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`verdict: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let startup: StartupKeys;
  try {
    // NOTE: before forking workers, so that the embedded secret file is created once and shared.
    startup = resolveStartupKeys(config);
  } catch (err) {
    if (err instanceof KeySourceError) {
      process.stderr.write(`verdict: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // The embedded store (PGlite) is single-process: hold its lock, with our port once we listen, so
  // that `npm run audit:verify` asks this service instead of reading a stale copy of the files.
  // Cluster workers run under a primary that holds it.
  let storeLock: EmbeddedLock | undefined;
  if (config.databaseUrl === undefined && !isClusterWorker()) {
    try {
      storeLock = acquireEmbeddedLock(config.dataDir, 'service');
    } catch (err) {
      if (err instanceof EmbeddedStoreBusyError) {
        process.stderr.write(`verdict: cannot start: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    const lock = storeLock;
    process.once('exit', () => lock.release());
  }
  if (config.workers > 1 && !isClusterWorker()) {
    const log = pino(loggerOptions(config));
    if (config.port !== 0) storeLock?.update({ port: config.port, host: config.host });
    runPrimary({ workers: config.workers, log, shutdownTimeoutMs: config.shutdownTimeoutMs });
    if (startup.devSecretFile) process.stdout.write(devTokenBanner(config, startup));
    return;
  }
  const metrics = createMetrics();
  const policy = new ActiveBundle(await loadBundleFile(config.bundlePath));
  // Audit store: migrations (advisory-locked, safe with many replicas), partitions, then the writer,
  // which replays a spool left by a previous process before anything is served.
  const storeLog = pino(loggerOptions(config));
  const db = await openDatabase(config);
  await migrate(db);
  // Every revision decisions are made on is stored, so that any decision can be replayed on it.
  const revisions = new RevisionStore(db);
  await revisions.put(policy.current().bundle);
  policy.onActivate((engine) => {
    revisions
      .put(engine.bundle)
      .catch((err) => storeLog.error({ err }, 'could not store the activated revision'));
  });
  await ensurePartitions(db);
  await dropExpiredPartitions(db, config.audit.retentionMonths);
  const stopPartitionMaintenance = schedulePartitionMaintenance(db, {
    retentionMonths: config.audit.retentionMonths,
    onError: (err) => storeLog.warn({ err }, 'partition maintenance failed; will retry'),
  });
  const audit = await createAuditTrail(config, db, storeLog);
  const recorder = audit.recorder;
  if (audit.writer) observeAuditWriter(metrics, audit.writer);
  trackActiveBundle(metrics, policy);
  const decisions = new DecisionService({ policy, recorder, onDecision: observeDecisions(metrics, policy) });
  const readiness = new DrainableReadiness(async () => {
    // The database is reported, not required: while it is away the audit spool keeps decisions
    // recorded, and taking every replica out of rotation at once would turn an outage into a total one.
    const database = await db.ping();
    return { ready: true, checks: { bundle: true, database } };
  });
  const app = await buildApp({
    config,
    keys: startup.keys,
    decisions,
    policy,
    logger: loggerOptions(config),
    readiness: readiness.readiness,
    metrics,
    scrapeMetrics: isClusterWorker() ? workerMetrics(metrics.registry) : undefined,
    audit: auditApi(db, revisions, policy),
  });
  installGracefulShutdown({
    log: app.log,
    readiness,
    server: app,
    // NOTE: the recorder closes after the server: every accepted request has been answered (and so
    // recorded or failed closed) before the queue and spool are flushed for the last time.
    after: [
      { name: 'audit recorder', close: () => audit.close() },
      {
        name: 'database',
        close: async () => {
          stopPartitionMaintenance();
          await db.close();
          storeLock?.release();
        },
      },
    ],
    drainMs: config.shutdownDrainMs,
    timeoutMs: config.shutdownTimeoutMs,
  });
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  if (address !== null && typeof address === 'object')
    storeLock?.update({ port: address.port, host: config.host });
  if (startup.devSecretFile && !isClusterWorker()) process.stdout.write(devTokenBanner(config, startup));
}

/** The auditor API over the decision log: search, export, replay, chain verification. */
function auditApi(db: Database, revisions: RevisionStore, policy: ActiveBundle): AuditDeps {
  const log = new DecisionLogReader(db);
  return {
    log,
    replayer: new DecisionReplayer({ log, revisions, policy }),
    verify: (range) => verifyChains(db, range),
  };
}

main().catch((err) => {
  process.stderr.write(`verdict: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
