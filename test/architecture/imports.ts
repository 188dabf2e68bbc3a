/** A string or template literal of a source file. */
export interface Literal {
  /** Offset of its opening quote or backtick in the file. */
  readonly offset: number;
  /** Its text between the quotes; each `${…}` of a template stands as `${}`. */
  readonly text: string;
  /** Whether it is a template with at least one `${…}` (its value is not known from the source). */
  readonly substituted: boolean;
}

/** A source file read as tokens: the code with comments and literal contents blanked, and the literals. */
export interface Scanned {
  /** The file's text, same length and lines, with comments and the contents of literals replaced by spaces. */
  readonly code: string;
  /** Every string and template literal, by the offset of its opening quote. */
  readonly literals: ReadonlyMap<number, Literal>;
}

/** How a literal's text shows a template substitution `${…}`. */
export const SUBSTITUTION = '$' + '{}';

const REGEX_AFTER_WORD = new Set([
  'return',
  'typeof',
  'case',
  'do',
  'else',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'yield',
  'await',
]);

/**
 * Splits TypeScript source into code, comments and literals — enough of a tokenizer for the
 * architecture rules: nested templates, regex literals and comments inside strings are handled;
 * a word that merely looks like an import or like SQL in a comment is never seen.
 * (No parser is used so that the checker reads planted text that does not type-check.)
 */
export function scan(text: string): Scanned {
  const out = text.split('');
  const literals = new Map<number, Literal>();
  const blank = (from: number, to: number) => {
    for (let k = from; k < to && k < out.length; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  // Templates whose `${` expression the scanner is inside, innermost last, with the `{` depth in it.
  const open: { offset: number; text: string; substituted: boolean; depth: number }[] = [];

  /** Reads template text from `from` to its end or its next `${`; returns where code resumes. */
  const templateChunk = (from: number, entry: (typeof open)[number], onStack: boolean): number => {
    let j = from;
    while (j < text.length) {
      const c = text[j];
      if (c === '\\') {
        entry.text += text.slice(j, j + 2);
        j += 2;
      } else if (c === '`') {
        blank(from, j);
        literals.set(entry.offset, {
          offset: entry.offset,
          text: entry.text,
          substituted: entry.substituted,
        });
        if (onStack) open.pop();
        return j + 1;
      } else if (c === '$' && text[j + 1] === '{') {
        blank(from, j);
        entry.text += SUBSTITUTION;
        entry.substituted = true;
        entry.depth = 0;
        if (!onStack) open.push(entry);
        return j + 2;
      } else {
        entry.text += c;
        j++;
      }
    }
    blank(from, j);
    literals.set(entry.offset, { offset: entry.offset, text: entry.text, substituted: entry.substituted });
    return j;
  };

  const regexAllowed = (at: number): boolean => {
    let k = at - 1;
    while (k >= 0 && /\s/.test(out[k]!)) k--;
    if (k < 0) return true;
    const prev = out[k]!;
    if (/[\w$]/.test(prev)) {
      let s = k;
      while (s > 0 && /[\w$]/.test(out[s - 1]!)) s--;
      return REGEX_AFTER_WORD.has(out.slice(s, k + 1).join(''));
    }
    return '(,=:[!&|?{};+-*%<>~^'.includes(prev);
  };

  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      const end = text.indexOf('\n', i);
      const to = end < 0 ? text.length : end;
      blank(i, to);
      i = to;
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const to = end < 0 ? text.length : end + 2;
      blank(i, to);
      i = to;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1;
      literals.set(i, { offset: i, text: text.slice(i + 1, j), substituted: false });
      blank(i + 1, j);
      i = j + 1;
    } else if (c === '`') {
      i = templateChunk(i + 1, { offset: i, text: '', substituted: false, depth: 0 }, false);
    } else if (c === '/' && regexAllowed(i)) {
      let j = i + 1;
      let inClass = false;
      while (j < text.length && text[j] !== '\n' && (inClass || text[j] !== '/')) {
        if (text[j] === '\\') j++;
        else if (text[j] === '[') inClass = true;
        else if (text[j] === ']') inClass = false;
        j++;
      }
      blank(i + 1, j);
      i = j + 1;
    } else if (c === '{' && open.length > 0) {
      open[open.length - 1]!.depth++;
      i++;
    } else if (c === '}' && open.length > 0) {
      const top = open[open.length - 1]!;
      if (top.depth === 0) i = templateChunk(i + 1, top, true);
      else {
        top.depth--;
        i++;
      }
    } else {
      i++;
    }
  }
  return { code: out.join(''), literals };
}

/** One module specifier a file imports. */
export interface ImportSpec {
  /** The specifier, e.g. `../engine/engine.ts` or `fastify`. */
  readonly spec: string;
  /** Offset of the specifier's literal in the file. */
  readonly offset: number;
}

/** One `import(…)` (or `typeof import(…)`) whose argument is not a plain literal. */
export interface ComputedImport {
  readonly offset: number;
  /** The argument's source text, as written. */
  readonly argument: string;
}

const STATIC_IMPORT = /(?:^|[;}\n])\s*(?:import|export)\s+(?:type\s+)?(?:[^'"`;()=]*?\s+from\s+)?(['"])/g;
const DYNAMIC_IMPORT = /(?<![\w$.])import\s*\(\s*/g;

/** The imports of a file: static imports, re-exports and dynamic imports of a literal, in order. */
export function importSpecs(text: string, scanned: Scanned = scan(text)): ImportSpec[] {
  const specs: ImportSpec[] = [];
  for (const match of scanned.code.matchAll(STATIC_IMPORT)) {
    const offset = match.index + match[0].length - 1;
    const literal = scanned.literals.get(offset);
    if (literal) specs.push({ spec: literal.text, offset });
  }
  for (const match of scanned.code.matchAll(DYNAMIC_IMPORT)) {
    const offset = match.index + match[0].length;
    const literal = scanned.literals.get(offset);
    if (literal && !literal.substituted) specs.push({ spec: literal.text, offset });
  }
  return specs.sort((a, b) => a.offset - b.offset);
}

/** The module specifiers a file imports (static, re-exports, literal dynamic), in order. */
export function importsOf(text: string): string[] {
  return importSpecs(text).map((s) => s.spec);
}

/** The `import(…)` calls of a file whose argument is an expression, not a literal: nothing can check them. */
export function computedImports(text: string, scanned: Scanned = scan(text)): ComputedImport[] {
  const found: ComputedImport[] = [];
  for (const match of scanned.code.matchAll(DYNAMIC_IMPORT)) {
    const offset = match.index + match[0].length;
    const literal = scanned.literals.get(offset);
    if (literal && !literal.substituted) continue;
    const close = text.indexOf(')', offset);
    found.push({ offset: match.index, argument: text.slice(offset, close < 0 ? undefined : close).trim() });
  }
  return found;
}

/** folder → the folders its files import, from (file's folder, imported folder) pairs. */
export function folderGraph(edges: Iterable<readonly [string, string]>): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const [from, to] of edges) {
    const set = graph.get(from) ?? new Set<string>();
    graph.set(from, set);
    if (to !== from) set.add(to);
  }
  return graph;
}

/** Every cycle among the folders, as `a → b → a` strings (each found once, from its least name). */
export function folderCycles(graph: Map<string, Set<string>>): string[] {
  const cycles = new Set<string>();
  const walk = (start: string, node: string, trail: string[]) => {
    for (const next of graph.get(node) ?? []) {
      if (next === start) {
        const least = [...trail].sort()[0];
        if (least === start) cycles.add([...trail, start].join(' → '));
      } else if (!trail.includes(next)) {
        walk(start, next, [...trail, next]);
      }
    }
  };
  for (const node of graph.keys()) walk(node, node, [node]);
  return [...cycles].sort();
}
