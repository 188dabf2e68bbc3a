import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SessionStore } from '../sessions/session-store.ts';
import type { Bus } from '../store/bus.ts';

/** Told when what a live page shows may have changed (a notice on its topic, or time passing). */
export type FeedListener = () => void;

/** How long the feed waits to gather a burst of notices into one re-render. */
const COALESCE_MS = 100;
/** Re-render this often without a notice: "time left" moves on, and lapsed requests leave. */
const TICK_MS = 30_000;

/**
 * One subscription per process to a topic of the notice bus (Redis across replicas, in-process
 * when embedded) — `approvals` for the inbox, `grants` for the waiver register — fanned out to the
 * pages of this replica that show it. A notice carries no state: each open page re-reads through
 * the capability's store and re-renders.
 */
export class ChangeFeed {
  private readonly bus: Bus;
  private readonly topic: string;
  private readonly listeners = new Set<FeedListener>();
  private unsubscribe: (() => Promise<void>) | null = null;
  private pending: NodeJS.Timeout | null = null;
  private tick: NodeJS.Timeout | null = null;
  private notices = 0;

  constructor(deps: { bus: Bus; topic: string }) {
    this.bus = deps.bus;
    this.topic = deps.topic;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.bus.subscribe(this.topic, () => this.changed());
    this.tick = setInterval(() => this.changed(), TICK_MS);
    this.tick.unref();
  }

  /** Listens until the returned function is called (an SSE connection's lifetime). */
  listen(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * How many notices (and ticks) this feed has had: what a page renders from the store is current
   * for one generation. It moves on every notice, listened to or not: a page opened after a change
   * that no open page heard must not be served a fragment rendered before it.
   */
  get generation(): number {
    return this.notices;
  }

  /** Open live pages on this replica (tests, metrics). */
  get size(): number {
    return this.listeners.size;
  }

  private changed(): void {
    this.notices += 1;
    if (this.pending || this.listeners.size === 0) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      for (const listener of this.listeners) listener();
    }, COALESCE_MS);
  }

  async stop(): Promise<void> {
    if (this.pending) clearTimeout(this.pending);
    if (this.tick) clearInterval(this.tick);
    this.listeners.clear();
    await this.unsubscribe?.();
  }
}

/**
 * Serves one live page's server-sent events: `render()` now, then again after every change the
 * feed reports, sent as `event` only when it differs from the last one sent; closed when the
 * viewer's session ends (signed out, expired or idle). Two updates never interleave on one
 * connection.
 */
export async function serveLive(
  request: FastifyRequest,
  reply: FastifyReply,
  opts: { feed: ChangeFeed; sessions: SessionStore; event: string; render: () => Promise<string> },
): Promise<void> {
  const sse = reply.sse;
  sse.keepAlive();
  // NOTE: the first fragment is sent before the handler returns (that writes the stream's
  // headers); later ones are chained.
  let last = await opts.render();
  await sse.send({ event: opts.event, data: last });
  const session = request.consoleState.session;
  let sending = Promise.resolve();
  const push = () => {
    sending = sending
      .then(async () => {
        if (!sse.isConnected) return;
        if (!session || !(await opts.sessions.isLive(session.idHash))) {
          sse.close();
          return;
        }
        // Only what changed is sent (a tick that changes nothing sends nothing).
        const fragment = await opts.render();
        if (fragment === last) return;
        last = fragment;
        await sse.send({ event: opts.event, data: fragment });
      })
      .catch((err: unknown) => request.log.warn({ err, event: opts.event }, 'console: live update failed'));
  };
  const stop = opts.feed.listen(push);
  sse.onClose(stop);
}
