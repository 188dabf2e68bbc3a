import path from 'node:path';
import { computedImports, folderCycles, folderGraph, importSpecs, type Scanned, scan } from './imports.ts';
import { type ArchitectureRules, modulePath, type RuleId } from './rules.ts';

/** A source file of src/: its path relative to src/ with `/` separators, and its text. */
export interface SourceFile {
  readonly path: string;
  readonly text: string;
}

/** One broken rule, where it is broken. */
export interface Violation {
  readonly rule: RuleId;
  /** `file:line` relative to src/ (or the folder or table the rule is about). */
  readonly at: string;
  readonly message: string;
}

/** `at message`, one line: what a failing test prints. */
export const describeViolation = (v: Violation): string => `[${v.rule}] ${v.at}: ${v.message}`;

const ROOT = '';
const folderOf = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : ROOT);
const lineAt = (text: string, offset: number): number => text.slice(0, offset).split('\n').length;
const isFastify = (spec: string): boolean =>
  spec === 'fastify' || spec.startsWith('fastify-') || spec.startsWith('@fastify/');

/** The tables created by migration scripts (`CREATE TABLE`, any schema prefix or quoting dropped). */
export function migrationTables(sqlTexts: readonly string[]): string[] {
  const tables = new Set<string>();
  const pattern =
    /\bCREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:"[^"]+"|[\w$]+)(?:\s*\.\s*(?:"[^"]+"|[\w$]+))?)/gi;
  for (const text of sqlTexts) for (const m of text.matchAll(pattern)) tables.add(unqualified(m[1]!));
  return [...tables].sort();
}

/** `"public"."Decision_Log"` → `Decision_Log`; `public.decision_log` or `${}.decision_log` → `decision_log`. */
function unqualified(name: string): string {
  const last = /("[^"]+"|[\w$]+)$/.exec(name)![1]!;
  return last.startsWith('"') ? last.slice(1, -1) : last.toLowerCase();
}

const SQL_TABLE =
  /\b(?:FROM|JOIN|INTO|UPDATE|TRUNCATE(?:\s+TABLE)?|TABLE|COPY)\s+(?:ONLY\s+|IF\s+(?:NOT\s+)?EXISTS\s+)?((?:(?:"[^"]+"|[A-Za-z_][\w$]*|\$\{\})\s*\.\s*)?(?:"[^"]+"|[A-Za-z_][\w$]*))/gi;

/** The known tables a piece of SQL (a literal's text) names after FROM, JOIN, INTO, UPDATE, TABLE, TRUNCATE or COPY. */
export function tablesInSql(sqlText: string, known: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const m of sqlText.matchAll(SQL_TABLE)) {
    const table = unqualified(m[1]!);
    if (known.has(table)) found.push(table);
  }
  return found;
}

/** Every folder of src/ has a row, every row a folder. */
export function checkFolderTable(folders: readonly string[], rules: ArchitectureRules): Violation[] {
  const named = new Set(rules.folders.map((f) => f.name));
  const present = new Set(folders);
  return [
    ...folders
      .filter((f) => !named.has(f))
      .map((f) => ({
        rule: 'folder-table' as const,
        at: `${f}/`,
        message: 'the folder has no row in the rules',
      })),
    ...[...named]
      .filter((f) => !present.has(f))
      .map((f) => ({
        rule: 'folder-table' as const,
        at: `${f}/`,
        message: 'the rules name a folder src/ does not have',
      })),
  ];
}

/**
 * The import rules: the allowed folders of each row, imports leaving src/, imports of root files
 * from folders, Fastify outside its folders, CommonJS loading and computed `import()`, folder cycles.
 */
export function checkImports(files: readonly SourceFile[], rules: ArchitectureRules): Violation[] {
  const byName = new Map(rules.folders.map((f) => [f.name, f]));
  const violations: Violation[] = [];
  const edges: [string, string][] = [];
  for (const file of files) {
    const from = folderOf(file.path);
    const row = from === ROOT ? rules.root : byName.get(from);
    const allowedFolders = new Set(row?.imports.flatMap((t) => ('name' in t ? [t.name] : [])) ?? []);
    const allowedOutside = row?.imports.flatMap((t) => ('path' in t ? [t.path] : [])) ?? [];
    const scanned: Scanned = scan(file.text);
    const at = (offset: number) => `${file.path}:${lineAt(file.text, offset)}`;
    for (const { spec, offset } of importSpecs(file.text, scanned)) {
      if (isFastify(spec)) {
        if (!row?.fastify)
          violations.push({
            rule: 'fastify',
            at: at(offset),
            message: `imports ${spec} (Fastify belongs to ${foldersWithFastify(rules)})`,
          });
        continue;
      }
      if (!spec.startsWith('.')) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file.path), spec));
      if (target.startsWith('../')) {
        const outside = target.slice('../'.length); // repository-relative (still `../…` when outside it)
        if (!allowedOutside.some((p) => outside === p || outside.startsWith(`${p}/`)))
          violations.push({
            rule: 'outside-import',
            at: at(offset),
            message: `imports ${spec}, outside src/`,
          });
        continue;
      }
      const to = folderOf(target);
      if (to === ROOT) {
        if (from !== ROOT)
          violations.push({
            rule: 'root-import',
            at: at(offset),
            message: `imports ${spec}, a file at the top of src/`,
          });
        continue;
      }
      if (to === from) continue;
      edges.push([from, to]);
      if (row && !allowedFolders.has(to))
        violations.push({
          rule: 'folder-import',
          at: at(offset),
          message: `imports ${spec}: ${from === ROOT ? 'the root' : `${from}/`} may not import ${to}/`,
        });
    }
    for (const m of scanned.code.matchAll(/\bcreateRequire\b|(?<![\w$.])require\s*\(/g))
      violations.push({ rule: 'loader', at: at(m.index), message: `uses ${m[0].replace(/\s*\($/, '()')}` });
    for (const { offset, argument } of computedImports(file.text, scanned))
      violations.push({
        rule: 'loader',
        at: at(offset),
        message: `import(${argument}) of a computed specifier`,
      });
  }
  for (const cycle of folderCycles(folderGraph(edges.filter(([from]) => from !== ROOT))))
    violations.push({ rule: 'folder-cycle', at: cycle.split(' → ')[0]!, message: cycle });
  return violations;
}

function foldersWithFastify(rules: ArchitectureRules): string {
  return (
    rules.folders
      .filter((f) => f.fastify)
      .map((f) => `${f.name}/`)
      .join(', ') || 'no folder'
  );
}

/** The table list is complete (every migration table has an owner) and every owner exists. */
export function checkTableList(
  files: readonly SourceFile[],
  tables: readonly string[],
  rules: ArchitectureRules,
): Violation[] {
  const paths = new Set(files.map((f) => f.path));
  const created = new Set(tables);
  const violations: Violation[] = [];
  for (const table of tables)
    if (!rules.tables[table])
      violations.push({
        rule: 'table-list',
        at: table,
        message: 'a migration creates it; no module owns it',
      });
  for (const [table, owner] of Object.entries(rules.tables)) {
    if (!created.has(table))
      violations.push({
        rule: 'table-list',
        at: table,
        message: 'owned in the rules; no migration creates it',
      });
    if (!paths.has(modulePath(owner)))
      violations.push({
        rule: 'table-list',
        at: table,
        message: `its owner ${modulePath(owner)} does not exist`,
      });
  }
  return violations;
}

/** SQL in a string or template literal names a table from a module that does not own it. */
export function checkTableOwners(files: readonly SourceFile[], rules: ArchitectureRules): Violation[] {
  const known = new Set(Object.keys(rules.tables));
  const violations: Violation[] = [];
  for (const file of files) {
    for (const literal of scan(file.text).literals.values()) {
      for (const table of new Set(tablesInSql(literal.text, known))) {
        const owner = modulePath(rules.tables[table]!);
        if (owner === file.path) continue;
        // The line where the literal names the table (a multi-line statement starts above it).
        const named = file.text.slice(literal.offset).search(new RegExp(`\\b${table}\\b`, 'i'));
        violations.push({
          rule: 'table-owner',
          at: `${file.path}:${lineAt(file.text, literal.offset + Math.max(named, 0))}`,
          message: `SQL on ${table}, owned by ${owner}`,
        });
      }
    }
  }
  return violations;
}

/** Every rule on a tree: its files, its folders and the tables its migrations create. */
export function checkArchitecture(
  files: readonly SourceFile[],
  tables: readonly string[],
  rules: ArchitectureRules,
): Violation[] {
  const folders = [...new Set(files.map((f) => folderOf(f.path)).filter((f) => f !== ROOT))].sort();
  return [
    ...checkFolderTable(folders, rules),
    ...checkImports(files, rules),
    ...checkTableList(files, tables, rules),
    ...checkTableOwners(files, rules),
  ];
}
