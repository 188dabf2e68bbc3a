/**
 * Tests on parsed JSON values, shared by every folder of src/: this module imports nothing, so any
 * folder may import it without a cycle.
 */

/** True for a JSON object (a mapping): not null, not an array. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
