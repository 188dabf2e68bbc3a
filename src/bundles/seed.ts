import { readFile } from 'node:fs/promises';
import { BundleError } from '../engine/bundle.ts';
import { ActivationConflictError, type PolicyLifecycle } from './lifecycle.ts';

/** How the active revision was found at start. */
export type SeedOutcome = 'database' | 'seeded' | 'seeded-by-another-replica';

/**
 * Makes sure the fleet has an active revision before this replica serves. Precedence:
 * 1. the active revision recorded in the database (whatever VERDICT_BUNDLE says);
 * 2. when there is none yet, the bundle at `bundlePath` (VERDICT_BUNDLE, default the built-in bundle
 *    built from policies/), uploaded and activated by `system`.
 * Replicas starting together race safely: activation is a compare-and-set on "none active", and the
 * losers follow the winner's revision.
 */
export async function seedActiveRevision(
  lifecycle: PolicyLifecycle,
  bundlePath: string,
): Promise<SeedOutcome> {
  const { state } = await lifecycle.state();
  if (state.active) return 'database';
  let bytes: Buffer;
  try {
    bytes = await readFile(bundlePath);
  } catch (err) {
    throw new BundleError(
      `cannot read the policy bundle at ${bundlePath}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  const { revision } = await lifecycle.upload(bytes, 'system', { reason: `seed from ${bundlePath}` });
  try {
    await lifecycle.activate(revision.digest, 'system', {
      expectedActive: null,
      reason: `seed: no active revision in the database; ${bundlePath}`,
    });
  } catch (err) {
    if (err instanceof ActivationConflictError) return 'seeded-by-another-replica';
    throw err;
  }
  return 'seeded';
}
