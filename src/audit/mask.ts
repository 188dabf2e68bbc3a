/**
 * Decision-log masking, following OPA's convention: the `system/log/mask` entrypoint receives the
 * event (the original input at `input.input`) and returns JSON pointers to erase ("/input/password")
 * or `{op: "upsert", path, value}` objects. Verdict applies only pointers under `/input`; the
 * input's digest is computed on the unmasked input before this runs.
 */

export type MaskRule = string | { op: 'upsert' | 'remove'; path: string; value?: unknown };

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function segmentsUnderInput(pointer: unknown): string[] | null {
  if (typeof pointer !== 'string' || !pointer.startsWith('/input')) return null;
  if (pointer === '/input') return [];
  if (!pointer.startsWith('/input/')) return null;
  return pointer.slice('/input/'.length).split('/').map(unescapePointer);
}

function isContainer(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Normalises whatever the mask entrypoint returned into rules; ignores anything unusable. */
export function maskRules(value: unknown): MaskRule[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (rule): rule is MaskRule =>
      typeof rule === 'string' ||
      (isContainer(rule) && (rule.op === 'upsert' || rule.op === 'remove') && typeof rule.path === 'string'),
  );
}

/**
 * Returns a masked copy of `input`; the original is left untouched. Erased values are removed
 * (OPA semantics); upserts set or replace a value. A rule on `/input` itself erases the whole input.
 */
export function applyMask(input: unknown, rules: MaskRule[]): { input: unknown; masked: string[] } {
  if (rules.length === 0) return { input, masked: [] };
  let copy: unknown = structuredClone(input);
  const masked: string[] = [];
  for (const rule of rules) {
    const pointer = typeof rule === 'string' ? rule : rule.path;
    const op = typeof rule === 'string' ? 'remove' : rule.op;
    const segments = segmentsUnderInput(pointer);
    if (segments === null) continue;
    if (segments.length === 0) {
      copy = op === 'upsert' && typeof rule !== 'string' ? rule.value : null;
      masked.push(pointer);
      continue;
    }
    let node: unknown = copy;
    for (const segment of segments.slice(0, -1)) {
      if (!isContainer(node)) break;
      if (op === 'upsert' && !isContainer(node[segment])) (node as Record<string, unknown>)[segment] = {};
      node = (node as Record<string, unknown>)[segment];
    }
    if (!isContainer(node)) continue;
    const last = segments.at(-1)!;
    if (op === 'upsert' && typeof rule !== 'string') {
      (node as Record<string, unknown>)[last] = rule.value;
      masked.push(pointer);
    } else if (Object.hasOwn(node, last)) {
      if (Array.isArray(node) && /^\d+$/.test(last)) node.splice(Number(last), 1);
      else delete (node as Record<string, unknown>)[last];
      masked.push(pointer);
    }
  }
  return { input: copy, masked };
}
