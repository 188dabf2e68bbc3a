import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { type AuditTrail, createAuditTrail } from './audit/audit-trail.ts';
import {
  Checkpointer,
  loadCheckpointKey,
  loadEvidenceKey,
  readCheckpointFile,
  type SigningKey,
  verifyCheckpoints,
} from './audit/checkpoints.ts';
import { verifyEvents } from './audit/event-log.ts';
import { computeKpis, type KpiSources } from './audit/kpis.ts';
import { dropExpiredPartitions, ensurePartitions, schedulePartitionMaintenance } from './audit/partitions.ts';
import { DecisionLogReader } from './audit/queries.ts';
import { DecisionReplayer } from './audit/replay.ts';
import { SiemForwarder } from './audit/siem-forwarder.ts';
import { verifyChains } from './audit/verify.ts';
import { configuredKeySource, type KeySource } from './auth/keys.ts';
import { OidcSignIn } from './auth/oidc.ts';
import { ActiveBundle, loadBundleFile } from './bundles/active.ts';
import { PolicyLifecycle } from './bundles/lifecycle.ts';
import { BundleServicePuller } from './bundles/puller.ts';
import { BundleReplica } from './bundles/replica.ts';
import { RevisionStore } from './bundles/revisions.ts';
import { seedActiveRevision } from './bundles/seed.ts';
import type { Config } from './config/resolve-config.ts';
import type { DecisionGrants } from './decisions/grants.ts';
import { DecisionService } from './decisions/service.ts';
import type { DecisionRecorder } from './decisions/types.ts';
import type { PolicyEngine } from './engine/engine.ts';
import { useGoBuiltinsModule } from './engine/go-builtins.ts';
import { buildEvidenceFiles, packEvidence } from './evidence/package.ts';
import { createGrants, type Grants } from './grants/create-grants.ts';
import { waiverExpirySql } from './grants/grants-sql.ts';
import { type App, type AppDeps, buildApp } from './http/app.ts';
import type { AuditDeps } from './http/audit-routes.ts';
import type { EvidenceDeps } from './http/evidence-routes.ts';
import type { Readiness } from './http/health-routes.ts';
import { observeDecisions } from './observability/decisions.ts';
import { registerGrantMetrics } from './observability/grant-metrics.ts';
import {
  createMetrics,
  type Metrics,
  observeAuditWriter,
  observeSiemForwarder,
  trackActiveBundle,
} from './observability/metrics.ts';
import { SessionStore } from './sessions/session-store.ts';
import { type Closable, DrainableReadiness } from './shutdown/graceful-shutdown.ts';
import { type Bus, openBus } from './store/bus.ts';
import { type ReplicaIdentity, replicaIdentity } from './store/fleet.ts';
import { migrate } from './store/migrate.ts';
import { openDatabase } from './store/open-database.ts';
import { closeRedis, openRedis, type RedisLog } from './store/redis.ts';
import type { Database } from './store/types.ts';

/** The waiver store's statement the KPIs need (audit/ cannot import grants/). */
const KPI_SOURCES: KpiSources = { waiverExpirySql };

/**
 * What a caller may put in place of what `createVerdict` would build from the config. Anything
 * given here is owned by the caller: Verdict does not close it.
 */
export interface VerdictOverrides {
  /**
   * The database (migrated here). Default: the configured one (Postgres, or embedded PGlite),
   * opened, migrated and closed by Verdict. `null`: no database at all — then `recorder` must be
   * given, and the auditor API and the revision store are absent (unit tests of the HTTP surface).
   */
  database?: Database | null;
  /** Where decisions are recorded. Default: the audit trail on the database (`config.audit`). */
  recorder?: DecisionRecorder;
  /** The revision to start on. Default: the bundle at `config.bundlePath`. */
  engine?: PolicyEngine;
  /** How bearer tokens are verified. Default: the key source the config names. */
  keys?: KeySource;
  /** Redis for state shared across replicas. Default: a client on `config.redisUrl` when set. */
  redis?: Redis | null;
  metrics?: Metrics;
  /** What readiness checks (before the shutdown drain). Default: a bundle is loaded; the database answers (reported, not required). */
  readinessCheck?: Readiness;
  clock?: () => Date;
  /** Partition creation and retention at start and daily. Default: on when Verdict owns the database. */
  partitionMaintenance?: boolean;
  /** Where start-up and background failures are logged. Default: the app's logger. */
  log?: RedisLog & { error(fields: object, message: string): void };
  /**
   * HTTP-level options passed to buildApp as they are; `audit`, `grants` and `bundles` serve only
   * when Verdict has none of its own (a test's stubs, to have those routes registered).
   */
  http?: Pick<
    AppDeps,
    'logger' | 'authOverrides' | 'plugins' | 'scrapeMetrics' | 'audit' | 'grants' | 'bundles' | 'evidence'
  >;
  /**
   * The policy lifecycle (revisions in Postgres, activation across replicas, shadow, /v1/bundles).
   * Default: on when there is a database and no `engine` was given.
   */
  lifecycle?: boolean;
  /**
   * The notice bus between replicas (bundles, grants). Default: Redis pub/sub on `config.redisUrl`,
   * else in-process.
   */
  bus?: Bus;
  /** This replica's identity. Default: host, pid and a random suffix. */
  replica?: ReplicaIdentity;
}

/** A wired Verdict: the HTTP app and the domain objects behind it. */
export interface Verdict {
  app: App;
  config: Config;
  policy: ActiveBundle;
  decisions: DecisionService;
  metrics: Metrics;
  /** Turns false when shutdown begins (see installGracefulShutdown). */
  readiness: DrainableReadiness;
  database: Database | null;
  revisions: RevisionStore | null;
  audit: AuditTrail | null;
  /** Signs the chain heads every VERDICT_CHECKPOINT_INTERVAL; null without a signing key or a writer. */
  checkpointer: Checkpointer | null;
  /** The checkpoint key (private and public, or public only); undefined when none is configured. */
  checkpointKey: SigningKey | undefined;
  /** Pushes decision records to VERDICT_SIEM_URL; null when not configured. */
  siem: SiemForwarder | null;
  /** The policy lifecycle and this replica's follower; null without the lifecycle. */
  lifecycle: PolicyLifecycle | null;
  replica: BundleReplica | null;
  /** Waivers and human approvals; null without a database. */
  grants: Grants | null;
  /** The console's sessions and sign-in links; null without a database (no console then). */
  sessions: SessionStore | null;
  /**
   * What Verdict opened, in the order to close it after the HTTP server has stopped accepting and
   * answered every request (so every decision is recorded or failed closed before the audit trail
   * flushes for the last time).
   */
  resources: Closable[];
  /** Closes the app, then `resources`. */
  close(): Promise<void>;
}

/**
 * The composition root: config → database (migrated, partitioned) → revision store → audit trail →
 * decision service → HTTP app. `src/main.ts` and the test fixtures build Verdict only through here,
 * so a dependency added once reaches both.
 */
export async function createVerdict(config: Config, overrides: VerdictOverrides = {}): Promise<Verdict> {
  // NOTE: closing order: what records decisions first (`early`: the audit recorder flushes into the
  // database), then what it relies on, last opened first (`late`, reversed: Redis, the database).
  const early: Closable[] = [];
  const late: Closable[] = [];
  const resources = () => [...early, ...late.toReversed()];
  const closeAll = async () => {
    for (const resource of resources()) await resource.close();
  };
  useGoBuiltinsModule(config.goBuiltinsWasm);
  try {
    return await assemble(config, overrides, { early, late, resources, closeAll });
  } catch (err) {
    await closeAll().catch(() => {});
    throw err;
  }
}

/** What Verdict closes, in two groups (see createVerdict's closing order). */
interface Owned {
  early: Closable[];
  late: Closable[];
  resources: () => Closable[];
  closeAll: () => Promise<void>;
}

/**
 * The wiring, step by step in dependency order: storage → active policy → partitions → audit trail
 * → checkpoints → SIEM → Redis → grants → decision service → readiness → HTTP app. Each step pushes
 * what it opens on `owned` (`early` or `late`), so a failure closes what came before it.
 */
async function assemble(config: Config, overrides: VerdictOverrides, owned: Owned): Promise<Verdict> {
  const { early, late } = owned;
  const keys = overrides.keys ?? configuredKeySource(config.jwt);
  if (!keys) throw new Error('no token key source: set JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL');
  const metrics = overrides.metrics ?? createMetrics();
  const storage = await openStorage(config, overrides, late);
  const { policy, lifecycle, replica } = await startPolicy(config, overrides, storage, metrics, late);
  if (storage) await maintainPartitions(config, overrides, storage);
  const { recorder, audit } = await startRecorder(config, overrides, storage, metrics, early);
  const database = storage?.database ?? null;
  // The checkpoint key is loaded (or, embedded, generated) even without a writer: verification needs it.
  const checkpointKey = database ? loadCheckpointKey(config, { generate: true }) : undefined;
  const checkpointer = startCheckpointer(config, overrides, database, audit, checkpointKey, early);
  const siem = startSiemForwarder(config, overrides, database, metrics, early);
  const redis = openSharedRedis(config, overrides, late);
  trackActiveBundle(metrics, policy);
  const grants = storage
    ? await wireGrants(config, storage.database, storage.bus, policy, metrics, overrides, owned)
    : null;
  if (database) {
    const db = database;
    metrics.watchKpis(() =>
      computeKpis(
        db,
        { from: new Date(Date.now() - 86_400_000), to: new Date(), bucket: 'day' },
        KPI_SOURCES,
      ),
    );
  }
  const sessions = storage ? startSessions(config, overrides, storage.database, early) : null;
  const decisions = buildDecisionService(config, overrides, { policy, recorder, metrics, grants, replica });
  const readiness = new DrainableReadiness(
    overrides.readinessCheck ?? defaultReadiness(config, database, replica),
  );
  const app = await buildHttpApp(config, overrides, {
    keys,
    decisions,
    policy,
    readiness,
    metrics,
    redis,
    storage,
    checkpointKey,
    checkpointer,
    lifecycle,
    replica,
    grants,
    sessions,
  });
  return {
    app,
    config,
    policy,
    decisions,
    metrics,
    readiness,
    database,
    revisions: storage?.revisions ?? null,
    audit,
    checkpointer,
    checkpointKey,
    siem,
    lifecycle,
    replica,
    grants,
    sessions,
    resources: owned.resources(),
    async close() {
      await app.close();
      await owned.closeAll();
    },
  };
}

/** The database with what always comes with it: the revision store and the notice bus. */
interface Storage {
  database: Database;
  /** True when Verdict opened the database (and closes it); false when the caller gave it. */
  owned: boolean;
  /** Stops the partition maintenance (set by maintainPartitions; called when the database closes). */
  partitions: { stop(): void };
  revisions: RevisionStore;
  bus: Bus;
}

/**
 * The database (the configured one, opened and owned, or the caller's), migrated, with its
 * revision store and one notice bus for every kind of shared state (bundles, grants). Null when the
 * caller said `database: null`. Both close late: the bus before the database.
 */
async function openStorage(
  config: Config,
  overrides: VerdictOverrides,
  late: Closable[],
): Promise<Storage | null> {
  let database: Database | null;
  let owned = false;
  if (overrides.database === undefined) {
    database = await openDatabase(config);
    owned = true;
  } else {
    database = overrides.database;
  }
  if (!database) return null;
  const partitions = { stop: () => {} };
  if (owned) {
    const db = database;
    late.push({
      name: 'database',
      close: async () => {
        partitions.stop();
        await db.close();
      },
    });
  }
  // Migrations are advisory-locked: safe with many replicas starting at once.
  await migrate(database);
  const revisions = new RevisionStore(database);
  let bus = overrides.bus;
  if (!bus) {
    const opened = openBus(config.redisUrl, {
      onError: (err) =>
        overrides.log?.warn({ err: err.message }, 'notice bus: Redis error; replicas converge by polling'),
    });
    bus = opened;
    late.push({ name: 'notice bus', close: () => opened.close() });
  }
  return { database, owned, partitions, revisions, bus };
}

/**
 * The active policy: with storage (and no fixed `engine`, unless `lifecycle` says so), the policy
 * lifecycle's — the database's active revision, followed across replicas; otherwise a fixed bundle
 * (`engine`, or the file at `config.bundlePath`), whose every activated revision is stored.
 */
async function startPolicy(
  config: Config,
  overrides: VerdictOverrides,
  storage: Storage | null,
  metrics: Metrics,
  late: Closable[],
): Promise<{ policy: ActiveBundle; lifecycle: PolicyLifecycle | null; replica: BundleReplica | null }> {
  if (storage && (overrides.lifecycle ?? overrides.engine === undefined)) {
    // The active revision is the database's (seeded from VERDICT_BUNDLE when there is none yet);
    // this replica follows every change (bus notice or poll).
    const { lifecycle, replica } = await startLifecycle(
      config,
      overrides,
      storage.database,
      storage.bus,
      metrics,
      late,
    );
    return { policy: replica.policy, lifecycle, replica };
  }
  const policy = new ActiveBundle(overrides.engine ?? (await loadBundleFile(config.bundlePath)));
  if (storage) {
    // Every revision decisions are made on is stored, so that any decision can be replayed on it.
    const store = storage.revisions;
    await store.put(policy.current().bundle);
    policy.onActivate((engine) => {
      store
        .put(engine.bundle)
        .catch((err) => overrides.log?.error({ err }, 'could not store the activated revision'));
    });
  }
  return { policy, lifecycle: null, replica: null };
}

/** Partition creation and retention, now and daily; on by default when Verdict owns the database. */
async function maintainPartitions(
  config: Config,
  overrides: VerdictOverrides,
  storage: Storage,
): Promise<void> {
  if (!(overrides.partitionMaintenance ?? storage.owned)) return;
  const { database } = storage;
  await ensurePartitions(database);
  await dropExpiredPartitions(database, config.audit.retentionMonths);
  storage.partitions.stop = schedulePartitionMaintenance(database, {
    retentionMonths: config.audit.retentionMonths,
    onError: (err) => overrides.log?.warn({ err }, 'partition maintenance failed; will retry'),
  });
}

/**
 * Where decisions are recorded: the caller's `recorder`, or the audit trail on the database (the
 * writer replays a spool left by a previous process before anything is served). Closes early.
 */
async function startRecorder(
  config: Config,
  overrides: VerdictOverrides,
  storage: Storage | null,
  metrics: Metrics,
  early: Closable[],
): Promise<{ recorder: DecisionRecorder; audit: AuditTrail | null }> {
  if (overrides.recorder) return { recorder: overrides.recorder, audit: null };
  if (!storage) throw new Error('createVerdict: without a database, a recorder must be given');
  const audit = await createAuditTrail(config, storage.database, overrides.log);
  early.push({ name: 'audit recorder', close: () => audit.close() });
  if (audit.writer) observeAuditWriter(metrics, audit.writer);
  return { recorder: audit.recorder, audit };
}

/**
 * The signer of the chain heads every VERDICT_CHECKPOINT_INTERVAL: null without a database, an
 * audit writer or a key that can sign. Closes after the audit recorder (in `early`), so that its
 * last checkpoint signs the heads of the final flush.
 */
function startCheckpointer(
  config: Config,
  overrides: VerdictOverrides,
  database: Database | null,
  audit: AuditTrail | null,
  checkpointKey: SigningKey | undefined,
  early: Closable[],
): Checkpointer | null {
  if (!database || !audit?.writer || !checkpointKey?.canSign) return null;
  const writer = audit.writer;
  const signer = new Checkpointer({
    db: database,
    key: checkpointKey,
    heads: () => writer.committedHeads(),
    intervalMs: config.checkpoint.intervalMs,
    file: config.checkpoint.file,
    url: config.checkpoint.url,
    hooks: {
      onError: (where, err) =>
        overrides.log?.warn(
          { err, where },
          where === 'url' ? 'chain checkpoint POST gave up' : 'chain checkpoint not kept',
        ),
      onRetry: (attempt, delayMs, err) =>
        overrides.log?.warn({ err, attempt, retry_in_ms: delayMs }, 'chain checkpoint POST failed; retrying'),
    },
  });
  signer.start();
  early.push({ name: 'checkpointer', close: () => signer.close() });
  return signer;
}

/**
 * The forwarder of decision records to VERDICT_SIEM_URL (null when not configured). Stopped before
 * the database closes; what is left is sent after the next start (the cursor is in Postgres).
 */
function startSiemForwarder(
  config: Config,
  overrides: VerdictOverrides,
  database: Database | null,
  metrics: Metrics,
  early: Closable[],
): SiemForwarder | null {
  if (!database || !config.siem.url) return null;
  const forwarder = new SiemForwarder({
    db: database,
    url: config.siem.url,
    format: config.siem.format,
    token: config.siem.token,
    batchMax: config.siem.batchMax,
    logger: overrides.log,
  });
  forwarder.start();
  observeSiemForwarder(metrics, () => forwarder.stats());
  early.push({ name: 'siem forwarder', close: () => forwarder.close() });
  return forwarder;
}

/** Redis shared by the replicas (the rate limiter's store): the caller's, or a client on `config.redisUrl`. */
function openSharedRedis(config: Config, overrides: VerdictOverrides, late: Closable[]): Redis | undefined {
  if (overrides.redis !== undefined) return overrides.redis ?? undefined;
  if (!config.redisUrl) return undefined;
  const client = openRedis(config.redisUrl, overrides.log);
  late.push({ name: 'redis', close: () => closeRedis(client) });
  return client;
}

/** The decision service on the active policy, its recorder, the grants and the shadow revision. */
function buildDecisionService(
  config: Config,
  overrides: VerdictOverrides,
  parts: {
    policy: ActiveBundle;
    recorder: DecisionRecorder;
    metrics: Metrics;
    grants: Grants | null;
    replica: BundleReplica | null;
  },
): DecisionService {
  const { policy, metrics } = parts;
  const decisions = new DecisionService({
    policy,
    recorder: parts.recorder,
    clock: overrides.clock,
    onDecision: observeDecisions(metrics, policy, overrides.log),
    grants: parts.grants?.decisions ?? legacyOnlyGrants(config),
    shadow: parts.replica?.shadow,
    onShadowDivergence: ({ entrypoint, direction }) =>
      metrics.shadowDivergences.inc({ entrypoint, direction }),
  });
  for (const direction of ['allow_to_deny', 'deny_to_allow']) {
    metrics.shadowDivergences.inc({ entrypoint: config.defaultEntrypoint, direction }, 0);
  }
  return decisions;
}

/** What readiness checks by default (before the shutdown drain). */
function defaultReadiness(config: Config, db: Database | null, replica: BundleReplica | null): Readiness {
  return async () => {
    // The database is reported, not required: while it is away the audit spool keeps decisions
    // recorded, and taking every replica out of rotation at once would turn an outage into a total one.
    // A replica that has failed to follow the fleet's active revision for longer than
    // VERDICT_BUNDLE_MAX_STALE_MS (when set) is taken out of rotation: it serves an old policy.
    const bundle = !(replica && config.bundles.maxStaleMs > 0 && replica.isStale(config.bundles.maxStaleMs));
    const checks: Record<string, boolean> = { bundle };
    if (db) checks.database = await db.ping();
    return { ready: bundle, checks };
  };
}

/**
 * The HTTP app (buildApp): the core routes, and the auditor, evidence, bundle and grants APIs when
 * Verdict has what they need (else the caller's `http` stubs, if any).
 */
function buildHttpApp(
  config: Config,
  overrides: VerdictOverrides,
  parts: {
    keys: KeySource;
    decisions: DecisionService;
    policy: ActiveBundle;
    readiness: DrainableReadiness;
    metrics: Metrics;
    redis: Redis | undefined;
    storage: Storage | null;
    checkpointKey: SigningKey | undefined;
    checkpointer: Checkpointer | null;
    lifecycle: PolicyLifecycle | null;
    replica: BundleReplica | null;
    grants: Awaited<ReturnType<typeof wireGrants>> | null;
    sessions: SessionStore | null;
  },
): Promise<App> {
  const { storage, policy, metrics, lifecycle, grants, checkpointKey, sessions } = parts;
  // The same audit and evidence objects serve the API and the console.
  const audit = storage
    ? auditApi(storage.database, storage.revisions, policy, {
        key: checkpointKey,
        file: config.checkpoint.file,
      })
    : undefined;
  const evidence = storage
    ? evidenceApi(
        storage.database,
        storage.revisions,
        checkpointKey,
        config,
        parts.checkpointer,
        overrides.log,
      )
    : undefined;
  return buildApp({
    ...overrides.http,
    config,
    keys: parts.keys,
    decisions: parts.decisions,
    policy,
    readiness: parts.readiness.readiness,
    metrics,
    redis: parts.redis,
    evidence: evidence ?? overrides.http?.evidence,
    audit: audit ?? overrides.http?.audit,
    bundles: lifecycle
      ? {
          lifecycle,
          replica: parts.replica,
          maxBytes: config.bundles.maxBytes,
          replicaTimeoutMs: config.bundles.replicaTimeoutMs,
          onRefused: () => metrics.bundleLoadFailures.inc({ source: 'upload' }),
        }
      : overrides.http?.bundles,
    grants: grants
      ? {
          waivers: { store: grants.waivers, policy },
          approvals: { store: grants.approvals, policy, onGranted: grants.onGranted },
        }
      : overrides.http?.grants,
    console:
      storage && grants && sessions
        ? {
            config,
            sessions,
            policy,
            approvals: grants.approvals,
            waivers: grants.waivers,
            decisionLog: new DecisionLogReader(storage.database),
            bus: storage.bus,
            onApprovalGranted: grants.onGranted,
            oidc: config.oidc ? new OidcSignIn(config.oidc) : undefined,
            lifecycle: lifecycle ?? undefined,
            revisions: storage.revisions,
            replayer: audit?.replayer,
            kpis: audit?.kpis,
            verifyChains: audit?.verify,
            buildEvidence: evidence?.build,
          }
        : undefined,
  });
}

/**
 * The console's session store on the database, with its limits from the config; what ended more
 * than a day ago is pruned at start and hourly (best effort: an ended session is refused anyway).
 */
function startSessions(
  config: Config,
  overrides: VerdictOverrides,
  database: Database,
  early: Closable[],
): SessionStore {
  const sessions = new SessionStore({
    db: database,
    clock: overrides.clock,
    limits: {
      idleMs: config.console.idleMinutes * 60_000,
      absoluteMs: config.console.absoluteHours * 3_600_000,
    },
  });
  const prune = () =>
    sessions
      .prune()
      .catch((err) => overrides.log?.warn({ err }, 'console sessions: prune failed; will retry'));
  void prune();
  const timer = setInterval(prune, 3_600_000);
  timer.unref();
  // Stopped with the other background users of the database (before the bus and the database).
  early.push({ name: 'console sessions', close: async () => clearInterval(timer) });
  return sessions;
}

/** Evidence packages (signed with VERDICT_EVIDENCE_KEY or the checkpoint key) and the JWKS. */
function evidenceApi(
  db: Database,
  revisions: RevisionStore,
  checkpointKey: SigningKey | undefined,
  config: Config,
  checkpointer: Checkpointer | null,
  log: VerdictOverrides['log'],
): EvidenceDeps {
  const evidenceKey = loadEvidenceKey(config, checkpointKey);
  // Said at start, not first when an auditor asks: GET /v1/evidence answers 503 without a key.
  if (!evidenceKey) {
    log?.warn(
      { route: '/v1/evidence' },
      'evidence packages cannot be signed: set VERDICT_CHECKPOINT_KEY (or VERDICT_EVIDENCE_KEY) for the auditor routes',
    );
  }
  return {
    build: evidenceKey
      ? async (query) =>
          packEvidence(
            await buildEvidenceFiles(
              {
                db,
                bundleBytes: async (digest) => (await revisions.get(digest))?.bytes ?? null,
                evidenceKey,
                checkpointKey,
                checkpointNow: checkpointer ? () => checkpointer.checkpoint() : undefined,
              },
              query,
            ),
          )
      : undefined,
    keys: () => {
      const keys = new Map<string, Record<string, string>>();
      for (const key of [evidenceKey, checkpointKey]) if (key) keys.set(key.keyId, key.jwk());
      return [...keys.values()];
    },
  };
}

/**
 * The auditor API over the decision log: search, export, replay, chain verification with the
 * signed checkpoints (those stored, and those appended to VERDICT_CHECKPOINT_FILE).
 */
function auditApi(
  db: Database,
  revisions: RevisionStore,
  policy: ActiveBundle,
  signing: { key: SigningKey | undefined; file: string | undefined },
): AuditDeps {
  const log = new DecisionLogReader(db);
  return {
    log,
    replayer: new DecisionReplayer({ log, revisions, policy }),
    kpis: (range) => computeKpis(db, range, KPI_SOURCES),
    // NOTE: the policy events' chains are verified whole (they are few and never dropped by
    // retention); the time range applies to the decision log and the stored checkpoints.
    verify: async (range) => {
      const [decisions, events] = await Promise.all([verifyChains(db, range), verifyEvents(db)]);
      const checkpoints = await verifyCheckpoints(db, signing.key, {
        ...range,
        extra: signing.file ? readCheckpointFile(signing.file) : [],
      });
      return { ...decisions, ok: decisions.ok && events.ok && checkpoints.ok, events, checkpoints };
    },
  };
}

/**
 * Starts the policy lifecycle on this replica: the lifecycle, seeding (database first, then
 * VERDICT_BUNDLE / the built-in bundle), the follower and heartbeat, and the bundle-service puller.
 * What it opens is pushed on `late` so that it closes before the database.
 */
async function startLifecycle(
  config: Config,
  overrides: VerdictOverrides,
  database: Database,
  bus: Bus,
  metrics: Metrics,
  late: Closable[],
): Promise<{ lifecycle: PolicyLifecycle; replica: BundleReplica }> {
  const log = overrides.log;
  const identity = overrides.replica ?? replicaIdentity();
  const lifecycle = new PolicyLifecycle({
    db: database,
    bus,
    writerId: identity.id,
    defaultEntrypoint: config.defaultEntrypoint,
    verification: config.bundles.verification,
    maxBytes: config.bundles.maxBytes,
    clock: overrides.clock,
    // A recorded input is at most a request body: what sizes an impact worker's heap cap.
    impact: { maxRecordBytes: config.bodyLimitBytes },
    onPublishFailed: (topic) =>
      log?.warn({ topic }, 'could not publish a change notice; replicas will find it by polling'),
  });
  // Impact analysis stops (its run failed, its workers ended) before the database closes.
  late.push({ name: 'impact analysis', close: () => lifecycle.impact.close() });
  await seedActiveRevision(lifecycle, config.bundlePath);
  const replica = await BundleReplica.start({
    db: database,
    bus,
    replica: identity,
    defaultEntrypoint: config.defaultEntrypoint,
    pollMs: config.bundles.pollMs,
    onSwap: ({ committedAt }) => {
      metrics.bundleFollowFailing.set(0);
      metrics.bundlePropagation.observe(Math.max(0, Date.now() - Date.parse(committedAt)) / 1000);
    },
    onError: (err, phase) => {
      if (phase === 'apply') {
        metrics.bundleFollowFailing.set(1);
        metrics.bundleLoadFailures.inc({ source: 'follow' });
      }
      log?.warn(
        { err: err instanceof Error ? err.message : String(err), phase },
        'bundle follower failure; will retry',
      );
    },
  });
  late.push({ name: 'bundle follower', close: () => replica.stop() });
  if (config.bundles.pull) {
    const puller = new BundleServicePuller({
      ...config.bundles.pull,
      lifecycle,
      onError: (err) =>
        log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'bundle service pull failed'),
    });
    puller.start();
    late.push({ name: 'bundle service puller', close: () => puller.stop() });
  }
  return { lifecycle, replica };
}

/**
 * Waivers and approvals on the database: the stores, this replica's waiver cache (notices on `bus`
 * and polling), the approval webhook, their metrics. Closed before the database.
 */
async function wireGrants(
  config: Config,
  database: Database,
  bus: Bus,
  policy: ActiveBundle,
  metrics: Metrics,
  overrides: VerdictOverrides,
  owned: { early: Closable[]; late: Closable[] },
): Promise<Grants & { onGranted: (approval: { requested_at: string; decided_at: string | null }) => void }> {
  let grantMetrics: ReturnType<typeof registerGrantMetrics> | null = null;
  const grants = await createGrants({
    config,
    db: database,
    bus,
    policy,
    clock: overrides.clock,
    log: overrides.log,
    replicaId: `${hostname()}:${process.pid}`,
    webhookEvents: {
      onAttemptFailed: (info) => {
        grantMetrics?.webhookFailures.inc();
        overrides.log?.warn(info, 'approval webhook delivery failed; will retry');
      },
      onGaveUp: (info) =>
        overrides.log?.error(
          info,
          'approval webhook gave up; the request stays listable at GET /v1/approvals',
        ),
    },
  });
  owned.early.push({ name: 'grants', close: () => grants.close() });
  grantMetrics = registerGrantMetrics(metrics.registry, {
    waivers: () => grants.waivers.counts(),
    approvals: () => grants.approvals.counts(),
  });
  const latency = grantMetrics.approvalLatency;
  return Object.assign(grants, {
    onGranted: (approval: { requested_at: string; decided_at: string | null }) => {
      if (approval.decided_at)
        latency.observe((Date.parse(approval.decided_at) - Date.parse(approval.requested_at)) / 1000);
    },
  });
}

/** Without a database only the legacy setting can be attached (a client's context.approval). */
function legacyOnlyGrants(config: Config): DecisionGrants | undefined {
  if (!config.grants.legacyClientApprovals) return undefined;
  return {
    attach: () => ({ legacy_client_approvals: true }),
    settle: async (items) => items.map(() => ({})),
  };
}
