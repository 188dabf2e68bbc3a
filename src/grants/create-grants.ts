import type { Config } from '../config/resolve-config.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import type { Bus } from '../store/bus.ts';
import type { Database } from '../store/types.ts';
import { ApprovalStore, type StoredApproval } from './approval-store.ts';
import { ApprovalWebhook, type WebhookEvents } from './approval-webhook.ts';
import { grantSettings } from './control-catalog.ts';
import { APPROVALS_TOPIC } from './grants-version.ts';
import { type ApprovalEvents, StoredGrants } from './stored-grants.ts';
import { WaiverCache } from './waiver-cache.ts';
import { readActiveWaivers, WaiverStore } from './waiver-store.ts';

/** Where the grants report background trouble. */
export interface GrantsLog {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  info?(fields: object, message: string): void;
}

/** The wired grants of one replica: stores, cache, the decision service's view, the notifier. */
export interface Grants {
  /** The waiver store: each change reaches this replica's cache and the bus before it returns. */
  waivers: WaiverStore;
  approvals: ApprovalStore;
  cache: WaiverCache;
  decisions: StoredGrants;
  webhook: ApprovalWebhook | null;
  close(): Promise<void>;
}

/**
 * Builds the grants on a database and a bus: this replica's waiver cache (notice + poll), the
 * waiver store (whose changes bump the grants version, reload the cache and notify the bus), the
 * approval store and its webhook.
 */
export async function createGrants(deps: {
  config: Config;
  db: Database;
  bus: Bus;
  policy: ActivePolicy;
  clock?: () => Date;
  log?: GrantsLog;
  replicaId: string;
  webhookEvents?: WebhookEvents;
  onApprovalUsed?: (approval: StoredApproval) => void;
}): Promise<Grants> {
  const { config, db, bus, policy, log } = deps;
  const clock = deps.clock ?? (() => new Date());
  const cache = new WaiverCache({
    load: () => readActiveWaivers(db, clock()),
    db,
    bus,
    pollMs: config.grants.pollMs,
    log,
  });
  await cache.start();
  const waivers = new WaiverStore({ db, clock, propagation: { cache, bus, origin: deps.replicaId } });
  // NOTE: a notice on the bus after each committed request or decision, not awaited: the live inbox
  // re-reads on it, and nothing in a decision waits for it (publishing never rejects).
  const approvals = new ApprovalStore({
    db,
    clock: deps.clock,
    onChange: () => {
      void bus.publish({ topic: APPROVALS_TOPIC, version: Date.now(), origin: deps.replicaId });
    },
  });
  const webhook = config.grants.webhookUrl
    ? new ApprovalWebhook({
        url: config.grants.webhookUrl,
        secret: config.grants.webhookSecret ?? '',
        publicUrl: config.publicUrl,
        events: deps.webhookEvents,
      })
    : null;
  const events: ApprovalEvents = {
    onRequested: (approval) => webhook?.notify(approval),
    onUsed: (approval) => deps.onApprovalUsed?.(approval),
    onError: (err, what) => log?.error({ err }, `grants: ${what} failed`),
  };
  const decisions = new StoredGrants({
    cache,
    approvals,
    settings: () => grantSettings(policy.current()),
    legacyClientApprovals: config.grants.legacyClientApprovals,
    publicUrl: config.publicUrl,
    events,
  });
  return {
    waivers,
    approvals,
    cache,
    decisions,
    webhook,
    async close() {
      await webhook?.close();
      await cache.close();
    },
  };
}
