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

/** Copies containers on first write, so a mask copies only the path it changes. */
class CopyOnWrite {
  private readonly copies = new Set<object>();

  /** `value`, or a shallow copy of it the first time it is about to be changed. */
  own<T extends object>(value: T): T {
    if (this.copies.has(value)) return value;
    const copy = (Array.isArray(value) ? [...value] : { ...value }) as T;
    this.copies.add(copy);
    return copy;
  }

  fresh(): Record<string, unknown> {
    const node = {};
    this.copies.add(node);
    return node;
  }
}

/**
 * Returns a masked copy of `input`; the original is left untouched. Erased values are removed
 * (OPA semantics); upserts set or replace a value. A rule on `/input` itself erases the whole input.
 * Only the objects on a rule's path are copied (shallowly): the rest of the copy shares the
 * original's untouched parts, which nothing downstream mutates.
 */
export function applyMask(input: unknown, rules: MaskRule[]): { input: unknown; masked: string[] } {
  if (rules.length === 0) return { input, masked: [] };
  const cow = new CopyOnWrite();
  let copy: unknown = input;
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
    if (!isContainer(copy)) continue;
    // Walk the path without copying first: a remove whose target is absent changes nothing.
    const last = segments.at(-1)!;
    const parents = segments.slice(0, -1);
    if (op !== 'upsert') {
      let probe: unknown = copy;
      for (const segment of parents) probe = isContainer(probe) ? probe[segment] : undefined;
      if (!isContainer(probe) || !Object.hasOwn(probe, last)) continue;
    }
    copy = cow.own(copy);
    let node = copy as Record<string, unknown>;
    for (const segment of parents) {
      const child = node[segment];
      node[segment] = isContainer(child) ? cow.own(child) : cow.fresh();
      node = node[segment] as Record<string, unknown>;
    }
    if (op === 'upsert' && typeof rule !== 'string') {
      node[last] = rule.value;
    } else if (Array.isArray(node) && /^\d+$/.test(last)) {
      node.splice(Number(last), 1);
    } else {
      delete node[last];
    }
    masked.push(pointer);
  }
  return { input: copy, masked };
}
