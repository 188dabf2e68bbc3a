import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Bus, Notice } from './bus.ts';
import type { Queryable, Sql } from './types.ts';

/**
 * State every replica must converge on (the active bundle; later waivers and approvals), and the
 * machinery that makes them converge: Postgres holds the truth (`fleet_state`, one row per topic
 * with a version), a change commits there and is then announced on the bus, and each replica's
 * follower reloads on a notice and also polls, so a lost notice or a Redis outage delays
 * convergence by one poll interval at most.
 */

/** One topic's desired state as committed. */
export interface FleetState<T> {
  topic: string;
  version: number;
  state: T;
  updatedAt: string;
  updatedBy: string;
}

interface FleetStateRow {
  topic: string;
  version: string | number;
  state: unknown;
  updated_at: Date | string;
  updated_by: string;
}

function fromRow<T>(row: FleetStateRow): FleetState<T> {
  return {
    topic: row.topic,
    version: Number(row.version),
    state: row.state as T,
    updatedAt: new Date(row.updated_at).toISOString(),
    updatedBy: row.updated_by,
  };
}

const FLEET_STATE_COLUMNS = 'topic, version, state, updated_at, updated_by';

/** `topic`'s committed state (no row before its first commit). */
export function readFleetStateSql(topic: string): Sql {
  return {
    name: 'fleet_state_read',
    text: `SELECT ${FLEET_STATE_COLUMNS} FROM fleet_state WHERE topic = $1`,
    values: [topic],
  };
}

/** Creates `topic` at version 0 with `initial`, unless it exists. */
export function seedFleetStateSql(topic: string, initial: unknown, by: string): Sql {
  return {
    text: `INSERT INTO fleet_state (topic, version, state, updated_by) VALUES ($1, 0, $2::jsonb, $3)
           ON CONFLICT (topic) DO NOTHING`,
    values: [topic, JSON.stringify(initial), by],
  };
}

/** `topic`'s state, its row locked until the transaction ends. */
export function lockFleetStateSql(topic: string): Sql {
  return {
    text: `SELECT ${FLEET_STATE_COLUMNS} FROM fleet_state WHERE topic = $1 FOR UPDATE`,
    values: [topic],
  };
}

/** Writes `topic`'s next state if it is still at `version`; returns the row written (none otherwise). */
export function writeFleetStateSql(topic: string, version: number, state: unknown, by: string): Sql {
  return {
    text: `UPDATE fleet_state SET version = version + 1, state = $2::jsonb, updated_at = clock_timestamp(), updated_by = $3
           WHERE topic = $1 AND version = $4
           RETURNING ${FLEET_STATE_COLUMNS}`,
    values: [topic, JSON.stringify(state), by, version],
  };
}

/**
 * Bumps `topic`'s version by one without changing its state (creating it at version 1), returning
 * the new version: a topic that only counts changes (the stored grants).
 */
export function bumpFleetVersionSql(topic: string, by: string): Sql {
  return {
    text: `INSERT INTO fleet_state (topic, version, state, updated_by) VALUES ($1, 1, '{}'::jsonb, $2)
           ON CONFLICT (topic) DO UPDATE
           SET version = fleet_state.version + 1, updated_at = now(), updated_by = EXCLUDED.updated_by
           RETURNING version`,
    values: [topic, by],
  };
}

/** `topic`'s committed version (no row before its first change). */
export function fleetVersionSql(topic: string): Sql {
  return { text: 'SELECT version FROM fleet_state WHERE topic = $1', values: [topic] };
}

/** The committed state of `topic`, or null when nothing was ever committed. */
export async function readFleetState<T>(db: Queryable, topic: string): Promise<FleetState<T> | null> {
  const { rows } = await db.query<FleetStateRow>(readFleetStateSql(topic));
  return rows[0] ? fromRow<T>(rows[0]) : null;
}

/**
 * Locks `topic`'s row for the rest of the transaction (creating it at version 0 with `initial` when
 * missing) and returns it: the first half of a compare-and-set. Concurrent changes of one topic
 * queue on this lock, so each sees the one committed before it.
 */
export async function lockFleetState<T>(
  tx: Queryable,
  topic: string,
  initial: T,
  by: string,
): Promise<FleetState<T>> {
  await tx.query(seedFleetStateSql(topic, initial, by));
  const { rows } = await tx.query<FleetStateRow>(lockFleetStateSql(topic));
  return fromRow<T>(rows[0]!);
}

/** Writes the new state of a topic locked by `lockFleetState` and returns its new version. */
export async function writeFleetState<T>(
  tx: Queryable,
  locked: FleetState<T>,
  state: T,
  by: string,
): Promise<FleetState<T>> {
  const { rows } = await tx.query<FleetStateRow>(writeFleetStateSql(locked.topic, locked.version, state, by));
  if (!rows[0]) throw new Error(`fleet state ${locked.topic} changed while locked`);
  return fromRow<T>(rows[0]);
}

/** Who a replica is: one per process. */
export interface ReplicaIdentity {
  id: string;
  host: string;
  pid: number;
  startedAt: string;
}

/** This process's identity (`<host>-<pid>-<random>`: a restarted pid is a new replica). */
export function replicaIdentity(now: Date = new Date()): ReplicaIdentity {
  const host = hostname();
  return {
    id: `${host}-${process.pid}-${randomBytes(3).toString('hex')}`,
    host,
    pid: process.pid,
    startedAt: now.toISOString(),
  };
}

/** What a follower reports about its topic (in heartbeats and status). */
export interface FollowerStatus {
  topic: string;
  /** The version this replica serves. */
  appliedVersion: number;
  /** The newest version this replica has seen committed. */
  desiredVersion: number;
  /** When the applied version was applied. */
  since: string | null;
  /** The last failure to apply the desired version, while it lasts. */
  failure: { message: string; at: string; version: number } | null;
  /** Since when this replica has been unable to apply the desired version (null when following). */
  failingSince: string | null;
}

/** Options of a follower. */
export interface FollowerOptions<T> {
  db: Queryable;
  bus: Bus;
  topic: string;
  pollMs: number;
  /**
   * Makes this replica serve `state`. Throws to refuse it (the replica keeps what it served and the
   * follower retries at the next poll). Never called concurrently with itself.
   */
  apply: (state: FleetState<T>) => Promise<void>;
  /** Told about read and apply failures (a log line, a metric). Must not throw. */
  onError?: (err: unknown, phase: 'read' | 'apply') => void;
  clock?: () => Date;
}

/**
 * Makes one replica follow one topic: at start, on every notice newer than what it applied, and
 * every `pollMs`, it reads the committed state and applies it when its version is newer.
 */
export class FleetFollower<T> {
  private readonly options: FollowerOptions<T>;
  private readonly clock: () => Date;
  private applied = 0;
  private desired = 0;
  private since: string | null = null;
  private failure: FollowerStatus['failure'] = null;
  private failingSince: Date | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => Promise<void>) | null = null;
  private readonly waiters: { version: number; resolve: () => void }[] = [];

  constructor(options: FollowerOptions<T>) {
    this.options = options;
    this.clock = options.clock ?? (() => new Date());
  }

  /** Marks `version` as already applied (the state loaded before the follower started). */
  markApplied(version: number): void {
    this.applied = version;
    this.desired = Math.max(this.desired, version);
    this.since = this.clock().toISOString();
  }

  /** Subscribes, syncs once, then polls. */
  async start(): Promise<void> {
    this.unsubscribe = await this.options.bus.subscribe(this.options.topic, (notice: Notice) => {
      if (notice.version > this.applied) void this.sync();
    });
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.options.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.unsubscribe?.();
    this.unsubscribe = null;
    await this.running;
  }

  /**
   * Reads and applies the committed state once (coalescing calls made while one runs). Never rejects.
   */
  sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.syncOnce();
      } while (this.again);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async syncOnce(): Promise<void> {
    let state: FleetState<T> | null;
    try {
      state = await readFleetState<T>(this.options.db, this.options.topic);
    } catch (err) {
      this.options.onError?.(err, 'read');
      return;
    }
    if (!state) return;
    this.desired = Math.max(this.desired, state.version);
    if (state.version <= this.applied) return;
    try {
      await this.options.apply(state);
    } catch (err) {
      const now = this.clock();
      this.failure = {
        message: err instanceof Error ? err.message : String(err),
        at: now.toISOString(),
        version: state.version,
      };
      this.failingSince ??= now;
      this.options.onError?.(err, 'apply');
      return;
    }
    this.applied = state.version;
    this.since = this.clock().toISOString();
    this.failure = null;
    this.failingSince = null;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.version <= this.applied) this.waiters.splice(i, 1)[0]!.resolve();
    }
  }

  /** Resolves once `version` (or a later one) is applied; for tests and benchmarks. */
  waitFor(version: number): Promise<void> {
    if (this.applied >= version) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ version, resolve }));
  }

  status(): FollowerStatus {
    return {
      topic: this.options.topic,
      appliedVersion: this.applied,
      desiredVersion: this.desired,
      since: this.since,
      failure: this.failure,
      failingSince: this.failingSince?.toISOString() ?? null,
    };
  }

  /** True when this replica has been unable to apply the desired state for longer than `maxMs`. */
  isStale(maxMs: number): boolean {
    return this.failingSince !== null && this.clock().getTime() - this.failingSince.getTime() > maxMs;
  }
}

/** A replica as the `replicas` table lists it. */
export interface ReplicaRecord extends ReplicaIdentity {
  heartbeatAt: string;
  state: Record<string, unknown>;
}

/**
 * This replica's heartbeat: upserts its row with what it serves every `intervalMs`, and deletes it
 * on stop. Live replicas are those whose last heartbeat is recent (`liveReplicas`).
 */
export class ReplicaHeartbeat {
  private timer: NodeJS.Timeout | null = null;
  private readonly options: {
    db: Queryable;
    replica: ReplicaIdentity;
    intervalMs: number;
    state: () => Record<string, unknown>;
    onError?: (err: unknown) => void;
  };

  constructor(options: ReplicaHeartbeat['options']) {
    this.options = options;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Writes one heartbeat now. Never rejects. */
  async beat(): Promise<void> {
    const { replica } = this.options;
    try {
      await this.options.db.query(heartbeatSql(replica, this.options.state()));
    } catch (err) {
      this.options.onError?.(err);
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    try {
      await this.options.db.query(removeReplicaSql(this.options.replica.id));
    } catch (err) {
      this.options.onError?.(err);
    }
  }
}

/** Records a replica's heartbeat (and its state), creating its row on the first. */
export function heartbeatSql(replica: ReplicaIdentity, state: unknown): Sql {
  return {
    name: 'replicas_heartbeat',
    text: `INSERT INTO replicas (id, host, pid, started_at, heartbeat_at, state)
           VALUES ($1, $2, $3, $4, now(), $5::jsonb)
           ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), state = EXCLUDED.state`,
    values: [replica.id, replica.host, replica.pid, replica.startedAt, JSON.stringify(state)],
  };
}

/** Removes a replica's row (it stops). */
export function removeReplicaSql(id: string): Sql {
  return { text: 'DELETE FROM replicas WHERE id = $1', values: [id] };
}

/** Removes the rows of replicas silent for an hour (they died without saying goodbye). */
export function forgetDeadReplicasSql(): Sql {
  return { text: `DELETE FROM replicas WHERE heartbeat_at < now() - interval '1 hour'`, values: [] };
}

/** Replicas whose last heartbeat is younger than `timeoutMs`, oldest first. */
export function liveReplicasSql(timeoutMs: number): Sql {
  return {
    text: `SELECT id, host, pid, started_at, heartbeat_at, state FROM replicas
           WHERE heartbeat_at > now() - make_interval(secs => $1::double precision / 1000)
           ORDER BY started_at, id`,
    values: [timeoutMs],
  };
}

/**
 * Replicas whose last heartbeat is younger than `timeoutMs`, oldest first. Rows older than an hour
 * are deleted on the way (replicas that died without saying goodbye).
 */
export async function liveReplicas(db: Queryable, timeoutMs: number): Promise<ReplicaRecord[]> {
  await db.query(forgetDeadReplicasSql());
  const { rows } = await db.query<{
    id: string;
    host: string;
    pid: number;
    started_at: Date | string;
    heartbeat_at: Date | string;
    state: Record<string, unknown>;
  }>(liveReplicasSql(timeoutMs));
  return rows.map((row) => ({
    id: row.id,
    host: row.host,
    pid: Number(row.pid),
    startedAt: new Date(row.started_at).toISOString(),
    heartbeatAt: new Date(row.heartbeat_at).toISOString(),
    state: row.state,
  }));
}
