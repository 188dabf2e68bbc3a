import { bumpFleetVersionSql, fleetVersionSql } from '../store/fleet.ts';
import type { Queryable } from '../store/types.ts';

/**
 * The fleet_state topic of the stored grants. Its version grows by one with every change to the
 * waivers (in the transaction of the change), so a replica knows whether its cache is current.
 */
export const GRANTS_TOPIC = 'grants';

/** Bumps the grants version inside the caller's transaction; returns the new version. */
export async function bumpGrantsVersion(tx: Queryable, actor: string): Promise<number> {
  const { rows } = await tx.query<{ version: string }>(bumpFleetVersionSql(GRANTS_TOPIC, actor));
  return Number(rows[0]!.version);
}

/** The committed grants version (0 before the first change). */
export async function readGrantsVersion(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ version: string }>(fleetVersionSql(GRANTS_TOPIC));
  return rows[0] ? Number(rows[0].version) : 0;
}

/** The event chain every grant event is appended to (one chain, serialised by its head row). */
export const GRANTS_EVENT_WRITER = 'grants';

/**
 * The bus topic of approval changes (a request opened, granted or denied): a notice only, so that
 * live views (the console's inbox) re-read the pending requests. It has no fleet_state version —
 * nothing in a decision depends on it — so its notices carry the publisher's clock as `version`.
 */
export const APPROVALS_TOPIC = 'approvals';
