import { APPROVALS_TOPIC } from '../grants/grants-version.ts';
import type { Bus } from '../store/bus.ts';

/** Told when the pending approvals may have changed (a request, a grant, a deny, or time passing). */
export type FeedListener = () => void;

/** How long the feed waits to gather a burst of notices into one re-render. */
const COALESCE_MS = 100;
/** Re-render this often without a notice: "time left" moves on, and lapsed requests leave. */
const TICK_MS = 30_000;

/**
 * One subscription per process to the approvals topic of the notice bus (Redis across replicas,
 * in-process when embedded), fanned out to the open inboxes of this replica. A notice carries no
 * state: each open inbox re-reads the pending requests through the approval store and re-renders
 * them for its own viewer (whose scopes decide what they see).
 */
export class ApprovalFeed {
  private readonly bus: Bus;
  private readonly listeners = new Set<FeedListener>();
  private unsubscribe: (() => Promise<void>) | null = null;
  private pending: NodeJS.Timeout | null = null;
  private tick: NodeJS.Timeout | null = null;
  private fanOuts = 0;

  constructor(deps: { bus: Bus }) {
    this.bus = deps.bus;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.bus.subscribe(APPROVALS_TOPIC, () => this.changed());
    this.tick = setInterval(() => this.changed(), TICK_MS);
    this.tick.unref();
  }

  /** Listens until the returned function is called (an SSE connection's lifetime). */
  listen(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** How many times the listeners were told so far: one change, one number, for every inbox. */
  get generation(): number {
    return this.fanOuts;
  }

  /** Open inboxes on this replica (tests, metrics). */
  get size(): number {
    return this.listeners.size;
  }

  private changed(): void {
    if (this.pending || this.listeners.size === 0) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.fanOuts += 1;
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
