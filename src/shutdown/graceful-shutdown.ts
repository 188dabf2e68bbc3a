import { setTimeout as sleep } from 'node:timers/promises';
import closeWithGrace from 'close-with-grace';
import type { Readiness } from '../http/health-routes.ts';

/** Something to close on shutdown, after the HTTP server stopped (audit writer, pools, bus). */
export interface Closable {
  name: string;
  close(): Promise<void>;
}

/** The minimum of a logger shutdown needs (pino and Fastify's logger both fit). */
export interface ShutdownLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Readiness that turns false the moment shutdown begins, whatever the underlying checks say, so a
 * load balancer drains this replica before its listener closes.
 */
export class DrainableReadiness {
  private draining = false;
  private readonly checks: Readiness;

  constructor(checks: Readiness) {
    this.checks = checks;
  }

  readonly readiness: Readiness = async () => {
    if (this.draining) return { ready: false, checks: { accepting: false } };
    const result = await this.checks();
    return { ready: result.ready, checks: { ...result.checks, accepting: true } };
  };

  drain(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }
}

/** What graceful shutdown needs from the process. */
export interface ShutdownPlan {
  log: ShutdownLog;
  readiness: DrainableReadiness;
  /** Stops accepting connections and waits for in-flight requests (Fastify's `close`). */
  server: { close(): Promise<unknown> };
  /** Closed in order after the server: flush the audit queue and spool first, then the pools. */
  after: Closable[];
  /** How long readiness is false while still serving (VERDICT_SHUTDOWN_DRAIN_MS). */
  drainMs: number;
  /** The whole shutdown must finish within this, or the process exits 1. */
  timeoutMs: number;
}

/**
 * Installs the SIGTERM/SIGINT handler (and the last-resort handler for an uncaught error):
 *
 * 1. readiness turns false (load balancers stop routing here), then waits `drainMs`;
 * 2. the server stops accepting and finishes the requests in flight;
 * 3. the `after` steps run in order (the audit recorder's close flushes its queue and spool);
 * 4. exit 0 — or exit 1 when the deadline passes, a step fails, or it began with an uncaught error.
 *
 * A second signal exits 1 at once.
 */
export function installGracefulShutdown(plan: ShutdownPlan): { shutdown: () => void } {
  const { log } = plan;
  const handle = closeWithGrace(
    {
      delay: plan.timeoutMs,
      logger: {
        error: (message: unknown) =>
          log.error({ err: message instanceof Error ? message : undefined }, String(message)),
      },
      onTimeout: (delay: number) => log.error({ timeout_ms: delay }, 'shutdown deadline exceeded; exiting 1'),
    },
    async ({ signal, err }: { signal?: string; err?: Error }) => {
      if (err) log.error({ err }, 'uncaught error; shutting down');
      log.info({ signal, drain_ms: plan.drainMs }, 'shutting down: readiness is now false');
      // NOTE: readiness first, listener last: a load balancer must see "not ready" while this
      // replica still answers, or requests routed here in between would be refused.
      plan.readiness.drain();
      if (plan.drainMs > 0) await sleep(plan.drainMs);
      await plan.server.close();
      log.info({}, 'server closed; in-flight requests finished');
      for (const step of plan.after) {
        await step.close();
        log.info({ step: step.name }, 'closed');
      }
      log.info({}, 'shutdown complete');
    },
  );
  return { shutdown: handle.close };
}
