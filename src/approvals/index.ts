import type { Config } from '../config/index.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import { WaiverCache } from '../exceptions/cache.ts';
import { grantSettings } from '../exceptions/catalog.ts';
import { GRANTS_TOPIC } from '../exceptions/fleet.ts';
import { ExceptionStore } from '../exceptions/store.ts';
import type { Bus } from '../store/bus.ts';
import type { Database } from '../store/types.ts';
import { type ApprovalEvents, StoredGrants } from './grants.ts';
import { ApprovalStore, type StoredApproval } from './store.ts';
import { ApprovalWebhook, type WebhookEvents } from './webhook.ts';

/** Where the grants report background trouble. */
export interface GrantsLog {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  info?(fields: object, message: string): void;
}

/** The wired grants of one replica: stores, cache, the decision service's view, the notifier. */
export interface Grants {
  exceptions: ExceptionStore;
  approvals: ApprovalStore;
  cache: WaiverCache;
  decisions: StoredGrants;
  webhook: ApprovalWebhook | null;
  /** After a waiver change committed here: reload this replica's cache, tell the others. */
  afterChange(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Builds the grants on a database and a bus: the waiver store (whose changes bump the grants
 * version), this replica's waiver cache (notice + poll), the approval store and its webhook.
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
  let lastVersion = 0;
  const exceptions = new ExceptionStore({
    db,
    clock: deps.clock,
    onChange: (version) => {
      lastVersion = version;
    },
  });
  const cache = new WaiverCache({ store: exceptions, db, bus, pollMs: config.grants.pollMs, log });
  await cache.start();
  const approvals = new ApprovalStore({ db, clock: deps.clock });
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
    exceptions,
    approvals,
    cache,
    decisions,
    webhook,
    async afterChange() {
      await cache.refresh();
      // NOTE: after the commit, never before: a replica that reloads on the notice must see the change.
      await bus.publish({ topic: GRANTS_TOPIC, version: lastVersion, origin: deps.replicaId });
    },
    async close() {
      await webhook?.close();
      await cache.close();
    },
  };
}
