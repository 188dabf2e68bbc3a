import path from 'node:path';

/** The folders of src/ that hold the domain: they never depend on the HTTP framework. */
export const DOMAIN_FOLDERS = ['engine', 'decisions', 'audit', 'bundles', 'grants', 'store'];

/**
 * The module specifiers a TypeScript file imports (static imports, re-exports, dynamic imports),
 * in order. Comments and string literals that merely look like imports are ignored.
 */
export function importsOf(text: string): string[] {
  const code = text
    // Block and line comments (a `//` inside a string is rare in this code base and harmless here).
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const specs: string[] = [];
  const pattern =
    /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const match of code.matchAll(pattern)) {
    const spec = match[1] ?? match[2];
    if (spec) specs.push(spec);
  }
  return specs;
}

/** The imports of a file that belong to Fastify: the framework, its plugins and its helpers. */
export function frameworkImports(text: string): string[] {
  return importsOf(text).filter(
    (spec) => spec === 'fastify' || spec.startsWith('fastify-') || spec.startsWith('@fastify/'),
  );
}

/** folder → the src folders its files import (relative imports only; files at src/ root are skipped). */
export function folderGraph(files: readonly { file: string; text: string }[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const { file, text } of files) {
    const parts = file.split(path.sep);
    if (parts.length < 2) continue;
    const from = parts[0]!;
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const spec of importsOf(text)) {
      if (!spec.startsWith('.')) continue;
      const target = path.normalize(path.join(path.dirname(file), spec)).split(path.sep);
      if (target.length < 2 || target[0] === '..') continue;
      if (target[0] !== from) edges.add(target[0]!);
    }
  }
  return graph;
}

/** Every cycle among the folders, as `a → b → a` strings (each found once, from its least name). */
export function folderCycles(graph: Map<string, Set<string>>): string[] {
  const cycles = new Set<string>();
  const walk = (start: string, node: string, trail: string[]) => {
    for (const next of graph.get(node) ?? []) {
      if (next === start) {
        const cycle = [...trail, start];
        const least = [...trail].sort()[0];
        if (least === start) cycles.add(cycle.join(' → '));
      } else if (!trail.includes(next)) {
        walk(start, next, [...trail, next]);
      }
    }
  };
  for (const node of graph.keys()) walk(node, node, [node]);
  return [...cycles].sort();
}
