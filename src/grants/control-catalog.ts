import type { PolicyEngine } from '../engine/engine.ts';
import { isObject } from '../json/values.ts';

/** One control of the active bundle's catalog (`data.verdict_data.controls`). */
export interface CatalogControl {
  severity: string;
  waivable: boolean;
}

/**
 * The grant settings the active bundle publishes (`data.verdict_data.grants`), with the defaults of
 * issue 13 for anything it leaves out. Policy authors change them with a bundle, like any control.
 */
export interface GrantSettings {
  /** Longest waiver per severity, in days; `default` for a severity not named. */
  waiverMaxDays: Record<string, number>;
  /** Severities whose waivers need two distinct approvers. */
  twoApproverSeverities: string[];
  /** How long a granted approval may be used. */
  approvalWindowMinutes: number;
  /** How long a pending approval request waits for a human. */
  approvalRequestTtlMinutes: number;
  /** How many decisions one approval may allow. */
  approvalMaxUses: number;
  /** Whether the user the agent acts for may approve its action. */
  onBehalfOfMayApprove: boolean;
}

export const DEFAULT_GRANT_SETTINGS: GrantSettings = {
  waiverMaxDays: { default: 90, high: 30, critical: 30 },
  twoApproverSeverities: ['critical'],
  approvalWindowMinutes: 15,
  approvalRequestTtlMinutes: 60,
  approvalMaxUses: 1,
  onBehalfOfMayApprove: false,
};

/** The fail-closed controls no waiver may touch, whatever a catalog says. */
export const ALWAYS_UNWAIVABLE = new Set(['DEFAULT-DENY', 'INPUT-001']);

function positive(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

function verdictData(engine: PolicyEngine): Record<string, unknown> {
  const data = engine.bundle.data.verdict_data;
  return isObject(data) ? data : {};
}

/** The control catalog of a bundle: id → severity and waivability. Malformed entries are left out. */
export function controlCatalog(engine: PolicyEngine): Map<string, CatalogControl> {
  const catalog = new Map<string, CatalogControl>();
  const controls = verdictData(engine).controls;
  if (!isObject(controls)) return catalog;
  for (const [id, entry] of Object.entries(controls)) {
    if (!isObject(entry) || typeof entry.severity !== 'string') continue;
    catalog.set(id, {
      severity: entry.severity,
      waivable: entry.waivable === true && !ALWAYS_UNWAIVABLE.has(id),
    });
  }
  return catalog;
}

/** The grant settings of a bundle, defaults filled in. */
export function grantSettings(engine: PolicyEngine): GrantSettings {
  const raw = verdictData(engine).grants;
  const g = isObject(raw) ? raw : {};
  const maxDays = { ...DEFAULT_GRANT_SETTINGS.waiverMaxDays };
  if (isObject(g.waiver_max_days)) {
    for (const [severity, days] of Object.entries(g.waiver_max_days)) {
      if (typeof days === 'number' && days > 0) maxDays[severity] = days;
    }
  }
  return {
    waiverMaxDays: maxDays,
    twoApproverSeverities: Array.isArray(g.two_approver_severities)
      ? g.two_approver_severities.filter((s): s is string => typeof s === 'string')
      : DEFAULT_GRANT_SETTINGS.twoApproverSeverities,
    approvalWindowMinutes: positive(g.approval_window_minutes, DEFAULT_GRANT_SETTINGS.approvalWindowMinutes),
    approvalRequestTtlMinutes: positive(
      g.approval_request_ttl_minutes,
      DEFAULT_GRANT_SETTINGS.approvalRequestTtlMinutes,
    ),
    approvalMaxUses: Math.floor(positive(g.approval_max_uses, DEFAULT_GRANT_SETTINGS.approvalMaxUses)),
    onBehalfOfMayApprove: g.on_behalf_of_may_approve === true,
  };
}

/** The longest waiver a control of `severity` may get, in days. */
export function maxWaiverDays(settings: GrantSettings, severity: string): number {
  return settings.waiverMaxDays[severity] ?? settings.waiverMaxDays.default ?? 90;
}
