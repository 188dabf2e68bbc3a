import { buildApp } from './app.ts';
import { MemoryRecorder } from './audit/memory-recorder.ts';
import { ActiveBundle, loadBundleFile } from './bundles/active.ts';
import { ConfigError, resolveConfig } from './config/index.ts';
import { DecisionService } from './decisions/service.ts';

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
  const policy = new ActiveBundle(await loadBundleFile(config.bundlePath));
  const recorder = new MemoryRecorder();
  const decisions = new DecisionService({ policy, recorder });
  const app = await buildApp({
    config,
    decisions,
    policy,
    logger: { level: config.logLevel },
    readiness: async () => ({ ready: true, checks: { bundle: true } }),
  });
  await app.listen({ port: config.port, host: config.host });
  const shutdown = async (signal: string) => {
    app.log.info({ signal }, 'shutting down');
    await app.close();
    await recorder.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`verdict: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
