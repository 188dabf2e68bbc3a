import { BundleError } from '../engine/bundle.ts';
import { PolicyEngine } from '../engine/engine.ts';
import type { Bus } from '../store/bus.ts';
import {
  FleetFollower,
  type FleetState,
  type FollowerStatus,
  ReplicaHeartbeat,
  type ReplicaIdentity,
  readFleetState,
} from '../store/fleet.ts';
import type { Database } from '../store/types.ts';
import { ActiveBundle } from './active.ts';
import { BUNDLES_TOPIC, type BundlesState } from './lifecycle.ts';
import { RevisionStore } from './revisions.ts';

/** The shadow revision a replica evaluates beside the active one (none most of the time). */
export class ShadowBundle {
  private engine: PolicyEngine | null = null;

  current(): PolicyEngine | null {
    return this.engine;
  }

  set(engine: PolicyEngine | null): void {
    this.engine = engine;
  }
}

/** What this replica serves and how well it follows (heartbeats, /v1/bundles/status, metrics). */
export interface ReplicaBundleStatus extends FollowerStatus {
  active: string;
  activeRevision: string;
  shadow: string | null;
}

/** Options of a replica's bundle follower. */
export interface BundleReplicaOptions {
  db: Database;
  bus: Bus;
  replica: ReplicaIdentity;
  defaultEntrypoint: string;
  /** How often Postgres is polled for a change (VERDICT_BUNDLE_POLL_MS). */
  pollMs: number;
  /** How often this replica heartbeats; default pollMs. */
  heartbeatMs?: number;
  /** Told after each swap (metrics, logs). */
  onSwap?: (swap: {
    active: PolicyEngine;
    shadow: PolicyEngine | null;
    version: number;
    committedAt: string;
  }) => void;
  /** Told about failures to read or apply the state (logs, metrics). Must not throw. */
  onError?: (err: unknown, phase: 'read' | 'apply') => void;
}

/**
 * One replica's view of the bundle lifecycle: it serves the committed active revision (and shadow),
 * follows changes (bus notice or poll), and heartbeats what it serves.
 *
 * NOTE: a new revision is loaded from Postgres and compiled BEFORE anything is swapped, and the swap
 * is one assignment per holder: a decision takes the engine once (DecisionService), so it is made
 * wholly on one revision, and requests in flight finish on the revision they started with. When
 * the new revision cannot be loaded or compiled, nothing is swapped: the replica keeps serving the
 * previous one, reports the failure and retries at the next poll.
 */
export class BundleReplica {
  readonly policy: ActiveBundle;
  readonly shadow = new ShadowBundle();
  private readonly options: BundleReplicaOptions;
  private readonly revisions: RevisionStore;
  private readonly follower: FleetFollower<BundlesState>;
  private readonly heartbeat: ReplicaHeartbeat;
  /**
   * Engines of recently served revisions, by digest: a rollback (or an alternation between two
   * revisions) swaps back to a ready engine instead of reading and instantiating the bundle again.
   */
  private readonly recent = new Map<string, PolicyEngine>();

  private constructor(options: BundleReplicaOptions, active: PolicyEngine) {
    this.options = options;
    this.revisions = new RevisionStore(options.db);
    this.policy = new ActiveBundle(active);
    this.follower = new FleetFollower<BundlesState>({
      db: options.db,
      bus: options.bus,
      topic: BUNDLES_TOPIC,
      pollMs: options.pollMs,
      apply: (state) => this.apply(state),
      onError: options.onError,
    });
    this.heartbeat = new ReplicaHeartbeat({
      db: options.db,
      replica: options.replica,
      intervalMs: options.heartbeatMs ?? options.pollMs,
      state: () => ({ [BUNDLES_TOPIC]: this.status() }),
      onError: (err) => options.onError?.(err, 'read'),
    });
  }

  /**
   * Loads the committed active revision (and shadow) and starts following. Throws when there is no
   * active revision yet (seed first: `seedActiveRevision`) or when it cannot be served at all.
   */
  static async start(options: BundleReplicaOptions): Promise<BundleReplica> {
    const committed = await readFleetState<BundlesState>(options.db, BUNDLES_TOPIC);
    if (!committed?.state.active)
      throw new Error('no active bundle revision in the database (seed one first)');
    const revisions = new RevisionStore(options.db);
    const active = await compile(revisions, committed.state.active, options.defaultEntrypoint);
    const replica = new BundleReplica(options, active);
    replica.remember(active);
    if (committed.state.shadow) {
      try {
        replica.shadow.set(await compile(revisions, committed.state.shadow, null));
      } catch (err) {
        // A shadow that cannot be served never blocks the active one.
        options.onError?.(err, 'apply');
      }
    }
    replica.follower.markApplied(committed.version);
    await replica.follower.start();
    await replica.heartbeat.start();
    return replica;
  }

  private async apply(committed: FleetState<BundlesState>): Promise<void> {
    const { active, shadow } = committed.state;
    if (!active) throw new Error('the committed state has no active revision');
    const current = this.policy.current();
    // Compile everything first; swap only when all of it is ready.
    const nextActive =
      current.bundle.digest === active
        ? current
        : await this.engineFor(active, this.options.defaultEntrypoint);
    const currentShadow = this.shadow.current();
    let nextShadow: PolicyEngine | null = null;
    if (shadow) {
      nextShadow =
        currentShadow?.bundle.digest === shadow ? currentShadow : await this.engineFor(shadow, null);
    }
    if (nextActive !== current) this.policy.activate(nextActive);
    if (nextShadow !== currentShadow) this.shadow.set(nextShadow);
    this.remember(nextActive);
    if (nextShadow) this.remember(nextShadow);
    this.options.onSwap?.({
      active: nextActive,
      shadow: nextShadow,
      version: committed.version,
      committedAt: committed.updatedAt,
    });
  }

  private async engineFor(digest: string, requiredEntrypoint: string | null): Promise<PolicyEngine> {
    const known = this.recent.get(digest);
    if (known && (requiredEntrypoint === null || known.hasEntrypoint(requiredEntrypoint))) return known;
    return compile(this.revisions, digest, requiredEntrypoint);
  }

  private remember(engine: PolicyEngine): void {
    this.recent.delete(engine.bundle.digest);
    this.recent.set(engine.bundle.digest, engine);
    while (this.recent.size > RECENT_ENGINES) this.recent.delete(this.recent.keys().next().value!);
  }

  /** Reads and applies the committed state now (besides notices and polls). */
  sync(): Promise<void> {
    return this.follower.sync();
  }

  /** Resolves once the replica serves `version` of the bundles state or a later one. */
  waitFor(version: number): Promise<void> {
    return this.follower.waitFor(version);
  }

  status(): ReplicaBundleStatus {
    const active = this.policy.current();
    return {
      ...this.follower.status(),
      active: active.bundle.digest,
      activeRevision: active.bundle.revision,
      shadow: this.shadow.current()?.bundle.digest ?? null,
    };
  }

  /** True when this replica has failed to follow the active revision for longer than `maxMs`. */
  isStale(maxMs: number): boolean {
    return this.follower.isStale(maxMs);
  }

  /** Writes a heartbeat now (tests). */
  beat(): Promise<void> {
    return this.heartbeat.beat();
  }

  /** Stops following and removes this replica from the status list. */
  async stop(): Promise<void> {
    await this.follower.stop();
    await this.heartbeat.stop();
  }
}

/** How many engines of recent revisions a replica keeps ready (active, shadow, the ones before). */
const RECENT_ENGINES = 4;

async function compile(
  revisions: RevisionStore,
  digest: string,
  requiredEntrypoint: string | null,
): Promise<PolicyEngine> {
  const bundle = await revisions.get(digest);
  if (!bundle) throw new BundleError(`revision ${digest} is not stored`);
  const engine = PolicyEngine.fromBundle(bundle);
  if (requiredEntrypoint !== null && !engine.hasEntrypoint(requiredEntrypoint)) {
    throw new BundleError(
      `revision ${digest} lacks the entrypoint ${requiredEntrypoint}`,
      'bundle_missing_entrypoint',
    );
  }
  return engine;
}
