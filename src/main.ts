import pino from 'pino';
import { devConsoleCaller, devTokenBanner, resolveStartupKeys, type StartupKeys } from './auth/dev-token.ts';
import { KeySourceError } from './auth/keys.ts';
import { isClusterWorker, runPrimary, workerMetrics } from './cluster.ts';
import { ConfigError, resolveConfig } from './config/resolve-config.ts';
import { createVerdict } from './create-verdict.ts';
import { loggerOptions } from './observability/logging.ts';
import { createMetrics } from './observability/metrics.ts';
import { SIGN_IN_LINK_TTL_MS } from './sessions/session-store.ts';
import { installGracefulShutdown } from './shutdown/graceful-shutdown.ts';
import { acquireEmbeddedLock, type EmbeddedLock, EmbeddedStoreBusyError } from './store/embedded-lock.ts';

/** Process entry: config → keys → (cluster primary, or) createVerdict → listen → graceful shutdown. */
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
  const log = pino(loggerOptions(config));
  const verdict = await createVerdict(config, {
    keys: startup.keys,
    log,
    http: {
      logger: loggerOptions(config),
      scrapeMetrics: isClusterWorker() ? workerMetrics(metrics.registry) : undefined,
    },
    metrics,
  });
  const { app } = verdict;
  installGracefulShutdown({
    log: app.log,
    readiness: verdict.readiness,
    server: app,
    // NOTE: the resources close after the server: every accepted request has been answered (and so
    // recorded or failed closed) before the audit queue and spool are flushed for the last time; the
    // embedded store's lock goes once its database is closed.
    after: storeLock
      ? [...verdict.resources, { name: 'embedded store lock', close: async () => storeLock?.release() }]
      : verdict.resources,
    drainMs: config.shutdownDrainMs,
    timeoutMs: config.shutdownTimeoutMs,
  });
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  if (address !== null && typeof address === 'object')
    storeLock?.update({ port: address.port, host: config.host });
  if (startup.devSecretFile && !isClusterWorker()) {
    // The console's one-time sign-in link for the dev user (a code stored hashed; used once).
    const code = await verdict.sessions?.createLink(devConsoleCaller(config), SIGN_IN_LINK_TTL_MS);
    const link = code ? `/console/login/link?code=${code}` : undefined;
    process.stdout.write(devTokenBanner(config, startup, link));
  }
}

main().catch((err) => {
  process.stderr.write(`verdict: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
