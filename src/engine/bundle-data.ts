import { parse as parseYaml } from 'yaml';
import { isObject } from '../json/values.ts';
import { BundleError } from './bundle.ts';

const DATA_FILES = ['data.json', 'data.yaml'] as const;

/** True for a bundle file OPA loads as data: `data.json` or `data.yaml` in any directory. */
export function isDataFile(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1);
  return (DATA_FILES as readonly string[]).includes(base);
}

function parseDataFile(name: string, content: Buffer): unknown {
  const text = content.toString('utf8');
  try {
    return name.endsWith('.yaml') ? parseYaml(text) : JSON.parse(text);
  } catch {
    throw new BundleError(`${name} is not valid ${name.endsWith('.yaml') ? 'YAML' : 'JSON'}`);
  }
}

/**
 * Merges `value` into `target` at `path`: objects merge key by key; anything else may only land on
 * an empty place. Two files that both set the same non-object value conflict, as in OPA.
 */
function mergeAt(target: Record<string, unknown>, path: string[], value: unknown, file: string): void {
  let node = target;
  for (const [i, segment] of path.entries()) {
    const next = node[segment];
    if (next === undefined) {
      if (i === path.length - 1) {
        node[segment] = value;
        return;
      }
      node[segment] = {};
    } else if (!isObject(next)) {
      throw new BundleError(`${file} conflicts with data already at /${path.slice(0, i + 1).join('/')}`);
    }
    node = node[segment] as Record<string, unknown>;
  }
  if (!isObject(value)) {
    throw new BundleError(
      path.length === 0
        ? `${file} must hold an object`
        : `${file} conflicts with data already at /${path.join('/')}`,
    );
  }
  for (const [key, member] of Object.entries(value)) mergeAt(node, [key], member, file);
}

/**
 * The data document of a bundle: every `data.json` / `data.yaml`, at any depth, placed at its
 * directory's path and merged as OPA's bundle reader does (open-policy-agent/opa docs,
 * management-bundles: "data.json files … at the path of the directory"). Files are merged in name
 * order so that the outcome never depends on the tar's order; a conflict refuses the bundle.
 */
export function mergeDataFiles(entries: Map<string, Buffer>): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  const names = [...entries.keys()].filter(isDataFile).sort();
  for (const name of names) {
    const value = parseDataFile(name, entries.get(name)!);
    const path = name
      .split('/')
      .slice(0, -1)
      .filter((segment) => segment !== '');
    mergeAt(data, path, value, name);
  }
  return data;
}
