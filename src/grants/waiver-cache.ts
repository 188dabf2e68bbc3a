import type { Bus } from '../store/bus.ts';
import { GRANTS_TOPIC, readGrantsVersion } from './grants-version.ts';
import type { PolicyWaiver } from './waiver-store.ts';

/** Where the cache reports a failed reload (it keeps serving what it has and retries). */
export interface CacheLog {
  warn(fields: object, message: string): void;
}

/**
 * One replica's copy of the active waivers, indexed by subject_id and resource_id, so that a
 * decision finds the waivers relevant to it without touching the database.
 *
 * NOTE: freshness. A change commits with a bump of fleet_state('grants').version; the replica that
 * made it reloads at once and publishes the version on the bus; every replica reloads on a notice
 * newer than what it applied, and also polls the version every `pollMs` (a lost notice, Redis
 * away). Expiry never waits for a reload: the policy compares expires_at with input.now.
 */
export class WaiverCache {
  private readonly load: () => Promise<PolicyWaiver[]>;
  private readonly version: () => Promise<number>;
  private readonly bus: Bus | undefined;
  private readonly pollMs: number;
  private readonly log: CacheLog | undefined;
  private bySubject = new Map<string, PolicyWaiver[]>();
  private byResource = new Map<string, PolicyWaiver[]>();
  private appliedVersion = -1;
  private reloading: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => Promise<void>) | null = null;

  constructor(deps: {
    /** Reads every active, unexpired waiver (readActiveWaivers). */
    load: () => Promise<PolicyWaiver[]>;
    db: Parameters<typeof readGrantsVersion>[0];
    bus?: Bus;
    pollMs: number;
    log?: CacheLog;
  }) {
    this.load = deps.load;
    const db = deps.db;
    this.version = () => readGrantsVersion(db);
    this.bus = deps.bus;
    this.pollMs = deps.pollMs;
    this.log = deps.log;
  }

  /** Loads the waivers, subscribes to notices and starts polling. */
  async start(): Promise<void> {
    await this.reload();
    if (this.bus) {
      this.unsubscribe = await this.bus.subscribe(GRANTS_TOPIC, (notice) => {
        if (notice.version > this.appliedVersion) this.refresh();
      });
    }
    this.timer = setInterval(() => this.poll(), this.pollMs);
    this.timer.unref();
  }

  /** The version of the grants this replica applies (-1 before the first load). */
  get applied(): number {
    return this.appliedVersion;
  }

  /** The active waivers naming this subject or this resource (the policy checks the rest). */
  relevant(subjectId: string | null, resourceId: string | null): PolicyWaiver[] {
    const bySubject = subjectId === null ? undefined : this.bySubject.get(subjectId);
    const byResource = resourceId === null ? undefined : this.byResource.get(resourceId);
    if (!bySubject) return byResource ?? [];
    if (!byResource) return bySubject;
    return [...new Set([...bySubject, ...byResource])];
  }

  /** Reloads now (coalesced with a reload under way); never rejects. */
  refresh(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = this.reload()
      .catch((err) => this.log?.warn({ err }, 'could not reload the waivers; serving the previous set'))
      .finally(() => {
        this.reloading = null;
        if (this.again) {
          this.again = false;
          void this.refresh();
        }
      });
    return this.reloading;
  }

  private poll() {
    this.version()
      .then((version) => {
        if (version > this.appliedVersion) return this.refresh();
      })
      .catch((err) => this.log?.warn({ err }, 'could not read the grants version'));
  }

  private async reload(): Promise<void> {
    // NOTE: the version is read before the rows: a change committed in between leaves the cache
    // newer than its version says, and the next notice or poll reloads it again (never staler).
    const version = await this.version();
    const waivers = await this.load();
    const bySubject = new Map<string, PolicyWaiver[]>();
    const byResource = new Map<string, PolicyWaiver[]>();
    for (const waiver of waivers) {
      if (waiver.subject_id !== null)
        bySubject.set(waiver.subject_id, [...(bySubject.get(waiver.subject_id) ?? []), waiver]);
      if (waiver.resource_id !== null)
        byResource.set(waiver.resource_id, [...(byResource.get(waiver.resource_id) ?? []), waiver]);
    }
    this.bySubject = bySubject;
    this.byResource = byResource;
    this.appliedVersion = Math.max(this.appliedVersion, version);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.unsubscribe?.();
    await this.reloading;
  }
}
