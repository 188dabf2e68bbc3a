import { type App, buildApp } from '../../src/app.ts';
import { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { ActiveBundle, loadBundleFile } from '../../src/bundles/active.ts';
import { resolveConfig } from '../../src/config/index.ts';
import { DecisionService } from '../../src/decisions/service.ts';
import type { DecisionRecorder } from '../../src/decisions/types.ts';
import { observeDecisions } from '../../src/observability/decisions.ts';
import { createMetrics, type Metrics, trackActiveBundle } from '../../src/observability/metrics.ts';

/** A real app on a real bundle, recording into memory (or into the recorder given). */
export async function buildTestApp(options: {
  bundlePath: string;
  env?: Record<string, string>;
  recorder?: DecisionRecorder;
}): Promise<{
  app: App;
  recorder: DecisionRecorder;
  policy: ActiveBundle;
  decisions: DecisionService;
  metrics: Metrics;
}> {
  const config = resolveConfig({ VERDICT_DATA_DIR: '/tmp/verdict-test-data', ...options.env });
  const policy = new ActiveBundle(await loadBundleFile(options.bundlePath));
  const recorder = options.recorder ?? new MemoryRecorder();
  // Default process metrics off: many apps share one test process.
  const metrics = createMetrics({ defaultMetrics: false });
  trackActiveBundle(metrics, policy);
  const decisions = new DecisionService({ policy, recorder, onDecision: observeDecisions(metrics, policy) });
  const app = await buildApp({
    config,
    decisions,
    policy,
    readiness: async () => ({ ready: true, checks: { bundle: true } }),
    metrics,
  });
  await app.ready();
  return { app, recorder, policy, decisions, metrics };
}
