import { createHash } from 'node:crypto';
import { appendEvent, type EventQuery, type EventRow, listEvents } from '../audit/event-log.ts';
import { BundleError, type ParsedBundle, parseBundle } from '../engine/bundle.ts';
import { PolicyEngine } from '../engine/engine.ts';
import type { Bus } from '../store/bus.ts';
import {
  type FleetState,
  liveReplicas,
  lockFleetState,
  readFleetState,
  writeFleetState,
} from '../store/fleet.ts';
import type { Database, Queryable } from '../store/types.ts';
import { ImpactAnalyzer, type ImpactDeps } from './impact.ts';
import { listRevisionInfoSql, putRevisionSql, RevisionStore, revisionInfoSql } from './revisions.ts';
import { type ShadowReport, shadowReport } from './shadow-report.ts';
import { type BundleVerificationConfig, verifyBundleBytes } from './signature.ts';

/** The fleet_state topic of the bundle lifecycle. */
export const BUNDLES_TOPIC = 'bundles';

/** What every replica must serve: the active and the shadow revision (digests). */
export interface BundlesState {
  active: string | null;
  activeSince: string | null;
  shadow: string | null;
  shadowSince: string | null;
}

export const EMPTY_BUNDLES_STATE: BundlesState = {
  active: null,
  activeSince: null,
  shadow: null,
  shadowSince: null,
};

/** A stored revision as the API shows it. */
export interface BundleRevisionInfo {
  digest: string;
  revision: string;
  entrypoints: string[];
  size: number;
  signed: boolean;
  uploadedBy: string;
  uploadedAt: string;
  state: 'active' | 'shadow' | 'inactive';
}

/** No revision with that digest is stored. */
export class RevisionNotFoundError extends Error {
  override name = 'RevisionNotFoundError';
  readonly code = 'bundle_not_found';
  readonly kind = 'not_found';
  readonly digest: string;
  constructor(digest: string) {
    super(`no bundle revision ${digest}`);
    this.digest = digest;
  }
}

/** A compare-and-set activation found another active revision than the one expected. */
export class ActivationConflictError extends Error {
  override name = 'ActivationConflictError';
  readonly code = 'activation_conflict';
  readonly kind = 'conflict';
  readonly expected: string | null;
  readonly actual: string | null;
  constructor(expected: string | null, actual: string | null) {
    super(
      `the active revision is ${actual ?? 'none'}, not ${expected ?? 'none'}: another activation happened meanwhile`,
    );
    this.expected = expected;
    this.actual = actual;
  }

  /** What the client is told beside the message: the revision it expected and the active one. */
  get problemExtensions() {
    return { expected_active: this.expected, active: this.actual };
  }
}

/** `sha256:<hex>` from a bare hex digest or a prefixed one; null when it is neither. */
export function normaliseDigest(value: string): string | null {
  const hex = value.startsWith('sha256:') ? value.slice(7) : value;
  return /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : null;
}

interface RevisionRow {
  digest: string;
  revision: string;
  entrypoints: string[];
  size: string | number;
  signed: boolean;
  uploaded_by: string;
  first_seen: Date | string;
}

function stateOf(digest: string, state: BundlesState): BundleRevisionInfo['state'] {
  if (digest === state.active) return 'active';
  if (digest === state.shadow) return 'shadow';
  return 'inactive';
}

function infoOf(row: RevisionRow, state: BundlesState): BundleRevisionInfo {
  return {
    digest: row.digest,
    revision: row.revision,
    entrypoints: row.entrypoints,
    size: Number(row.size),
    signed: row.signed,
    uploadedBy: row.uploaded_by,
    uploadedAt: new Date(row.first_seen).toISOString(),
    state: stateOf(row.digest, state),
  };
}

/** What the lifecycle needs; built by the composition root. */
export interface LifecycleDeps {
  db: Database;
  bus: Bus;
  /** This replica's id: the writer of the events it records, the origin of its notices. */
  writerId: string;
  /** The entrypoint every active revision must have (VERDICT_DEFAULT_ENTRYPOINT). */
  defaultEntrypoint: string;
  /** With a key, unsigned or wrongly signed bundles are refused (VERDICT_BUNDLE_VERIFICATION_KEY). */
  verification?: BundleVerificationConfig;
  /** Larger bundles are refused (VERDICT_BUNDLE_MAX_BYTES). */
  maxBytes: number;
  clock?: () => Date;
  /** Told when a notice could not be published (replicas then converge by polling). */
  onPublishFailed?: (topic: string) => void;
  /** Impact analysis's settings (workers, page size, lease); its defaults otherwise. */
  impact?: Partial<
    Pick<
      ImpactDeps,
      | 'workers'
      | 'workerNice'
      | 'pageSize'
      | 'pageBytes'
      | 'maxRecordBytes'
      | 'leaseMs'
      | 'progressMs'
      | 'onError'
    >
  >;
}

/** A checked bundle, ready to store or serve. */
export interface CheckedBundle {
  bundle: ParsedBundle;
  engine: PolicyEngine;
  signed: boolean;
}

/**
 * The policy lifecycle: upload (check, store once by digest), activate with compare-and-set, shadow,
 * and what the fleet serves. Every change commits in Postgres together with its chained policy
 * event, then a notice goes out on the bus; replicas follow with `BundleReplica`.
 */
export class PolicyLifecycle {
  private readonly deps: LifecycleDeps;
  private readonly revisions: RevisionStore;
  private readonly clock: () => Date;
  /** Impact analysis of candidate revisions on recorded decisions (upload → impact → shadow → activate). */
  readonly impact: ImpactAnalyzer;

  constructor(deps: LifecycleDeps) {
    this.deps = deps;
    this.revisions = new RevisionStore(deps.db);
    this.clock = deps.clock ?? (() => new Date());
    this.impact = new ImpactAnalyzer({
      ...deps.impact,
      db: deps.db,
      revisions: this.revisions,
      replicaId: deps.writerId,
      defaultEntrypoint: deps.defaultEntrypoint,
    });
  }

  /**
   * Checks a bundle as activation would: parses it (OPA wasm bundle), verifies its signature when a
   * key is configured, compiles it and looks for the default entrypoint. Throws BundleError with
   * the code and reason of the first failed check.
   */
  check(bytes: Buffer): CheckedBundle {
    if (bytes.byteLength > this.deps.maxBytes) {
      throw new BundleError(
        `the bundle is ${bytes.byteLength} bytes, over the limit of ${this.deps.maxBytes}`,
      );
    }
    const bundle = parseBundle(bytes);
    let signed = false;
    if (this.deps.verification) {
      verifyBundleBytes(bytes, this.deps.verification);
      signed = true;
    }
    const engine = PolicyEngine.fromBundle(bundle);
    if (!engine.hasEntrypoint(this.deps.defaultEntrypoint)) {
      throw new BundleError(
        `the bundle lacks the default entrypoint ${this.deps.defaultEntrypoint} (it has ${engine.entrypoints.join(', ') || 'none'}); build it with -e ${this.deps.defaultEntrypoint}`,
        'bundle_missing_entrypoint',
      );
    }
    return { bundle, engine, signed };
  }

  /**
   * Stores a bundle once by digest. `created` is false when the same bytes were already stored
   * (nothing changes then). A refused bundle is recorded as a `refuse` event and rethrown.
   */
  async upload(
    bytes: Buffer,
    actor: string,
    options: { reason?: string } = {},
  ): Promise<{ revision: BundleRevisionInfo; created: boolean }> {
    let checked: CheckedBundle;
    try {
      checked = this.check(bytes);
    } catch (err) {
      if (err instanceof BundleError) {
        await this.recordRefusal(
          'upload',
          `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
          actor,
          err,
        );
      }
      throw err;
    }
    const { bundle, signed } = checked;
    const created = await this.deps.db.transaction(async (tx) => {
      const { rowCount } = await tx.query(putRevisionSql(bundle, { uploadedBy: actor, signed }));
      if (rowCount === 0) return false;
      await appendEvent(
        tx,
        this.deps.writerId,
        {
          kind: 'policy',
          action: 'upload',
          actor,
          subject: bundle.digest,
          toDigest: bundle.digest,
          reason: options.reason ?? null,
          payload: { revision: bundle.revision, size: bytes.byteLength, signed },
        },
        this.clock(),
      );
      return true;
    });
    const revision = await this.get(bundle.digest);
    if (!revision) throw new RevisionNotFoundError(bundle.digest);
    return { revision, created };
  }

  /** Loads and checks a stored revision (its bytes re-hashed, its signature re-verified). */
  private async load(digest: string): Promise<CheckedBundle> {
    const bundle = await this.revisions.get(digest);
    if (!bundle) throw new RevisionNotFoundError(digest);
    return this.check(bundle.bytes);
  }

  /**
   * Makes `digest` the active revision of the fleet. With `expectedActive` (a digest, or null for
   * "none yet") it is a compare-and-set: ActivationConflictError when another revision is active.
   * The revision is compiled and checked before anything changes; a refusal is an event.
   * `changed` is false when it was already active.
   */
  async activate(
    digest: string,
    actor: string,
    options: { reason?: string; expectedActive?: string | null } = {},
  ): Promise<{ state: FleetState<BundlesState>; changed: boolean }> {
    try {
      await this.load(digest);
    } catch (err) {
      if (err instanceof BundleError) await this.recordRefusal('activate', digest, actor, err);
      throw err;
    }
    return this.change(actor, (state) => {
      if (options.expectedActive !== undefined && options.expectedActive !== state.active) {
        throw new ActivationConflictError(options.expectedActive, state.active);
      }
      if (state.active === digest) return null;
      const now = this.clock().toISOString();
      const clearsShadow = state.shadow === digest;
      return {
        next: {
          active: digest,
          activeSince: now,
          shadow: clearsShadow ? null : state.shadow,
          shadowSince: clearsShadow ? null : state.shadowSince,
        },
        event: {
          action: 'activate',
          subject: digest,
          fromDigest: state.active,
          toDigest: digest,
          reason: options.reason ?? null,
          payload: clearsShadow ? { shadow_cleared: true } : {},
        },
      };
    });
  }

  /** Evaluates `digest` beside the active revision on every replica (null: stop shadowing). */
  async setShadow(
    digest: string | null,
    actor: string,
    options: { reason?: string } = {},
  ): Promise<{ state: FleetState<BundlesState>; changed: boolean }> {
    if (digest !== null) {
      try {
        await this.load(digest);
      } catch (err) {
        if (err instanceof BundleError) await this.recordRefusal('shadow', digest, actor, err);
        throw err;
      }
    }
    return this.change(actor, (state) => {
      if (state.shadow === digest) return null;
      return {
        next: { ...state, shadow: digest, shadowSince: digest === null ? null : this.clock().toISOString() },
        event: {
          action: digest === null ? 'shadow_clear' : 'shadow_set',
          subject: digest ?? state.shadow,
          fromDigest: state.shadow,
          toDigest: digest,
          reason: options.reason ?? null,
          payload: {},
        },
      };
    });
  }

  /**
   * One change of the bundles state: lock, decide, write, record the event, commit — then notify.
   * NOTE: the notice goes out only after the commit, so a replica that reacts to it reads the new
   * state; if the notice is lost, replicas find the change at their next poll.
   */
  private async change(
    actor: string,
    decide: (state: BundlesState) => {
      next: BundlesState;
      event: {
        action: string;
        subject: string | null;
        fromDigest: string | null;
        toDigest: string | null;
        reason: string | null;
        payload: Record<string, unknown>;
      };
    } | null,
  ): Promise<{ state: FleetState<BundlesState>; changed: boolean }> {
    const result = await this.deps.db.transaction(async (tx) => {
      const locked = await lockFleetState<BundlesState>(tx, BUNDLES_TOPIC, EMPTY_BUNDLES_STATE, actor);
      const change = decide({ ...EMPTY_BUNDLES_STATE, ...locked.state });
      if (!change) return { state: locked, changed: false };
      // The state is written last, so its updated_at (clock_timestamp()) is as close to the commit
      // as the database can say: propagation is measured from it.
      await appendEvent(tx, this.deps.writerId, { kind: 'policy', actor, ...change.event }, this.clock());
      const written = await writeFleetState(tx, locked, change.next, actor);
      return { state: written, changed: true };
    });
    if (result.changed) {
      const sent = await this.deps.bus.publish({
        topic: BUNDLES_TOPIC,
        version: result.state.version,
        origin: this.deps.writerId,
      });
      if (!sent) this.deps.onPublishFailed?.(BUNDLES_TOPIC);
    }
    return result;
  }

  private async recordRefusal(stage: string, digest: string, actor: string, err: BundleError): Promise<void> {
    await this.deps.db.transaction((tx) =>
      appendEvent(
        tx,
        this.deps.writerId,
        {
          kind: 'policy',
          action: 'refuse',
          actor,
          subject: digest,
          toDigest: digest,
          reason: err.message,
          payload: { stage, code: err.code },
        },
        this.clock(),
      ),
    );
  }

  /** The committed state (all null before the first activation). */
  async state(db: Queryable = this.deps.db): Promise<FleetState<BundlesState>> {
    const state = await readFleetState<BundlesState>(db, BUNDLES_TOPIC);
    return (
      state ?? {
        topic: BUNDLES_TOPIC,
        version: 0,
        state: EMPTY_BUNDLES_STATE,
        updatedAt: new Date(0).toISOString(),
        updatedBy: 'system',
      }
    );
  }

  /** One stored revision with its state, or null. */
  async get(digest: string): Promise<BundleRevisionInfo | null> {
    const [{ rows }, state] = await Promise.all([
      this.deps.db.query<RevisionRow>(revisionInfoSql(digest)),
      this.state(),
    ]);
    return rows[0] ? infoOf(rows[0], state.state) : null;
  }

  /** Stored revisions, newest first (keyset: `before` is the last digest of the previous page). */
  async list(options: { limit?: number; before?: string } = {}): Promise<BundleRevisionInfo[]> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 1000);
    const [{ rows }, state] = await Promise.all([
      this.deps.db.query<RevisionRow>(listRevisionInfoSql(limit, options.before)),
      this.state(),
    ]);
    return rows.map((row) => infoOf(row, state.state));
  }

  /** The stored bytes of a revision, or null. */
  async content(digest: string): Promise<Buffer | null> {
    const bundle = await this.revisions.get(digest);
    return bundle?.bytes ?? null;
  }

  /** Policy events, newest first. */
  async events(query: Omit<EventQuery, 'kind'> = {}): Promise<EventRow[]> {
    return listEvents(this.deps.db, { ...query, kind: 'policy' });
  }

  /**
   * The active revision before the current one (the `from` of the last activation that made the
   * current one active), for `verdict bundle rollback`; null when there is none.
   */
  async previousActive(): Promise<string | null> {
    const { state } = await this.state();
    if (!state.active) return null;
    const [last] = await listEvents(this.deps.db, {
      kind: 'policy',
      action: 'activate',
      subject: state.active,
      limit: 1,
    });
    return last?.from_digest ?? null;
  }

  /**
   * What a shadow revision would have changed in a window (see shadowReport): `digest`'s, else the
   * current shadow revision's — not mixed with the flips of earlier ones — else every revision's.
   */
  async shadowReport(window: { from: string; to: string; digest?: string | null }): Promise<ShadowReport> {
    const digest = window.digest ?? (await this.state()).state.shadow;
    return shadowReport(this.deps.db, { ...window, digest });
  }

  /** Every live replica and what it serves, with the committed state. */
  async status(timeoutMs: number): Promise<{
    desired: FleetState<BundlesState>;
    replicas: Awaited<ReturnType<typeof liveReplicas>>;
  }> {
    const [desired, replicas] = await Promise.all([this.state(), liveReplicas(this.deps.db, timeoutMs)]);
    return { desired, replicas };
  }
}
