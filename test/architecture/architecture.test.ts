// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests hold source text, templates included, as strings.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { filePointers, section, stalePointers, withRules } from './doc.ts';
import { folderCycles, folderGraph, importsOf, scan } from './imports.ts';
import { type ArchitectureRules, type FolderRule, RULE_TEXT, RULES, type RuleId } from './rules.ts';
import {
  checkArchitecture,
  checkFolderTable,
  checkImports,
  checkTableList,
  checkTableOwners,
  describeViolation,
  migrationTables,
  type SourceFile,
  tablesInSql,
  type Violation,
} from './rules-check.ts';

const repo = path.resolve(import.meta.dirname, '../..');
const src = path.join(repo, 'src');

function filesUnder(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return filesUnder(full, ext);
    return name.endsWith(ext) ? [full] : [];
  });
}

const files: SourceFile[] = filesUnder(src, '.ts').map((file) => ({
  path: path.relative(src, file).split(path.sep).join('/'),
  text: readFileSync(file, 'utf8'),
}));
const migrations = readdirSync(path.join(repo, 'migrations'))
  .filter((name) => name.endsWith('.sql'))
  .map((name) => readFileSync(path.join(repo, 'migrations', name), 'utf8'));
const tables = migrationTables(migrations);
const doc = readFileSync(path.join(repo, 'docs/architecture.md'), 'utf8');

const planted = (path: string, ...lines: string[]): SourceFile => ({ path, text: lines.join('\n') });
const at = (violations: Violation[], rule: RuleId, file: string) =>
  violations.filter((v) => v.rule === rule && v.at.startsWith(`${file}:`)).map(describeViolation);
/** A copy of the rules with one folder's row changed. */
const withFolder = (
  rules: ArchitectureRules,
  name: string,
  change: Partial<FolderRule>,
): ArchitectureRules => ({
  ...rules,
  folders: rules.folders.map((f) => (f.name === name ? { ...f, ...change } : f)),
});

describe('reading source', () => {
  it('reads the imports of a file, static, re-exported and dynamic, and not those in comments or strings', () => {
    const text = [
      "import type { A } from '../engine/engine.ts';",
      "import fastify from 'fastify';",
      'import {',
      '  b,',
      '  c,',
      "} from '../store/index.ts';",
      "export { b } from './b.ts';",
      "export * as ns from './ns.ts';",
      "import './side-effect.ts';",
      "const c = await import('../store/bus.ts');",
      "type T = typeof import('pkg');",
      "// import nothing from 'fastify-in-a-comment';",
      '/* import x from "in-a-block-comment"; */',
      'const s = "import x from \'not-an-import\'";',
      "const t = `import('not-a-dynamic-import')`;",
      "const re = /import y from 'in-a-regex'/;",
    ].join('\n');
    expect(importsOf(text)).toEqual([
      '../engine/engine.ts',
      'fastify',
      '../store/index.ts',
      './b.ts',
      './ns.ts',
      './side-effect.ts',
      '../store/bus.ts',
      'pkg',
    ]);
  });

  it('reads nested templates as literals, each `${…}` standing as `${}`', () => {
    const text = 'const q = `SELECT * FROM t ${where.length ? `WHERE ${where.join(" AND ")}` : ""} LIMIT 1`;';
    const literals = [...scan(text).literals.values()].map((l) => l.text);
    expect(literals).toContain('SELECT * FROM t ${} LIMIT 1');
    expect(literals).toContain('WHERE ${}');
    expect(literals).toContain(' AND ');
  });

  it('finds the tables SQL names, plain, schema-qualified, quoted or after a substituted schema', () => {
    const known = new Set(['decision_log', 'approvals', 'Mixed']);
    expect(tablesInSql('SELECT * FROM decision_log d JOIN approvals a ON true', known)).toEqual([
      'decision_log',
      'approvals',
    ]);
    expect(tablesInSql('select 1 from public.decision_log', known)).toEqual(['decision_log']);
    expect(tablesInSql('SELECT 1 FROM "public"."decision_log"', known)).toEqual(['decision_log']);
    expect(tablesInSql('SELECT 1 FROM ${}.decision_log', known)).toEqual(['decision_log']);
    expect(tablesInSql('SELECT 1 FROM "Mixed"', known)).toEqual(['Mixed']);
    expect(tablesInSql('INSERT INTO approvals', known)).toEqual(['approvals']);
    expect(tablesInSql('UPDATE ONLY approvals SET x = 1', known)).toEqual(['approvals']);
    expect(tablesInSql('DELETE FROM approvals', known)).toEqual(['approvals']);
    expect(tablesInSql('TRUNCATE TABLE approvals', known)).toEqual(['approvals']);
    expect(tablesInSql('TRUNCATE approvals', known)).toEqual(['approvals']);
    expect(tablesInSql('COPY decision_log TO STDOUT', known)).toEqual(['decision_log']);
    expect(tablesInSql('SELECT extract(epoch FROM decided_at) FROM decision_logs', known)).toEqual([]);
  });

  it('reads the tables the migrations create', () => {
    expect(migrationTables(['CREATE TABLE IF NOT EXISTS a (x int);\ncreate table "S".b ();'])).toEqual([
      'a',
      'b',
    ]);
    expect(tables).toContain('decision_log');
  });
});

describe('the rules as data', () => {
  it('name each folder once, and allow no cycle between folders', () => {
    const names = RULES.folders.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    const edges = RULES.folders.flatMap((f) =>
      f.imports.flatMap((t) => ('name' in t ? [[f.name, t.name] as const] : [])),
    );
    expect(folderCycles(folderGraph(edges))).toEqual([]);
  });

  it('name a folder by its entry, never by a string, so that renaming a folder is its one `name` line', () => {
    const entries = new Set<unknown>(RULES.folders);
    const references = [
      ...RULES.folders.flatMap((f) => f.imports.filter((t) => 'name' in t)),
      ...RULES.root.imports,
      ...Object.values(RULES.tables).map((owner) => owner.folder),
    ];
    expect(references.filter((f) => !entries.has(f))).toEqual([]);
  });

  it('allow Fastify in console/ and http/ only', () => {
    expect(RULES.folders.filter((f) => f.fastify).map((f) => f.name)).toEqual(['console', 'http']);
  });
});

describe('src/ keeps the rules (docs/architecture.md)', () => {
  const violations = checkArchitecture(files, tables, RULES);
  it.each(Object.keys(RULE_TEXT) as RuleId[])('%s', (rule) => {
    expect(violations.filter((v) => v.rule === rule).map(describeViolation)).toEqual([]);
  });
});

describe('each rule fails on a planted violation', () => {
  it('folder-import: decisions/ importing store/ (a folder its row does not allow)', () => {
    const tree = [
      ...files,
      planted('decisions/planted.ts', "import type { Database } from '../store/types.ts';"),
    ];
    expect(at(checkImports(tree, RULES), 'folder-import', 'decisions/planted.ts')).toEqual([
      '[folder-import] decisions/planted.ts:1: imports ../store/types.ts: decisions/ may not import store/',
    ]);
  });

  it('folder-import: a literal dynamic import obeys the table too', () => {
    const tree = [
      ...files,
      planted('store/planted.ts', 'export const load = () =>', "  import('../http/auth.ts');"),
    ];
    expect(at(checkImports(tree, RULES), 'folder-import', 'store/planted.ts')).toEqual([
      '[folder-import] store/planted.ts:2: imports ../http/auth.ts: store/ may not import http/',
    ]);
  });

  it('folder-import: an import from a nested folder is its top folder’s', () => {
    const tree = [...files, planted('engine/wasm/planted.ts', "export { x } from '../../audit/chain.ts';")];
    expect(at(checkImports(tree, RULES), 'folder-import', 'engine/wasm/planted.ts')).toHaveLength(1);
  });

  it('outside-import: a folder importing outside src/ where its row does not allow it', () => {
    const tree = [
      ...files,
      planted('engine/planted.ts', "import { app } from '../../test/support/app.ts';"),
      planted('mcp/planted.ts', "import type { Decision } from '../../packages/sdk/src/index.ts';"),
    ];
    const violations = checkImports(tree, RULES);
    expect(at(violations, 'outside-import', 'engine/planted.ts')).toEqual([
      '[outside-import] engine/planted.ts:1: imports ../../test/support/app.ts, outside src/',
    ]);
    expect(at(violations, 'outside-import', 'mcp/planted.ts')).toEqual([]);
  });

  it('root-import: a file inside a folder importing a file at the top of src/', () => {
    const tree = [
      ...files,
      planted('audit/planted.ts', "import { createVerdict } from '../verdict.ts';"),
      planted('http/nested/planted.ts', "import type { App } from '../../app.ts';"),
    ];
    const violations = checkImports(tree, RULES);
    expect(at(violations, 'root-import', 'audit/planted.ts')).toEqual([
      '[root-import] audit/planted.ts:1: imports ../verdict.ts, a file at the top of src/',
    ]);
    expect(at(violations, 'root-import', 'http/nested/planted.ts')).toHaveLength(1);
  });

  it('fastify: Fastify, a @fastify/* package or fastify-plugin in auth/, evidence/, mcp/ — and not in http/', () => {
    const tree = [
      ...files,
      planted('auth/planted.ts', "import type { FastifyInstance } from 'fastify';"),
      planted('evidence/planted.ts', "import fp from 'fastify-plugin';"),
      planted('mcp/planted.ts', "import jwt from '@fastify/jwt';"),
      planted(
        'http/planted.ts',
        "import fp from 'fastify-plugin';",
        "import type { FastifyInstance } from 'fastify';",
      ),
    ];
    const violations = checkImports(tree, RULES);
    expect(at(violations, 'fastify', 'auth/planted.ts')).toEqual([
      '[fastify] auth/planted.ts:1: imports fastify (Fastify belongs to console/, http/)',
    ]);
    expect(at(violations, 'fastify', 'evidence/planted.ts')).toHaveLength(1);
    expect(at(violations, 'fastify', 'mcp/planted.ts')).toHaveLength(1);
    expect(at(violations, 'fastify', 'http/planted.ts')).toEqual([]);
  });

  it('loader: createRequire, require() and import() of a variable or a substituted template', () => {
    const tree = [
      ...files,
      planted(
        'engine/planted.ts',
        "import { createRequire } from 'node:module';",
        'const load = createRequire(import.meta.url);',
        "// createRequire in a comment, and 'createRequire' in a string, are not code",
      ),
      planted(
        'store/planted.ts',
        "import module from 'node:module';",
        "const x = module.createRequire(import.meta.url)('x');",
      ),
      planted(
        'audit/planted.ts',
        'const name = process.argv[2]!;',
        'await import(name);',
        'await import(`./${name}.ts`);',
      ),
      planted(
        'cli/planted.ts',
        "const { readFile } = await import('node:fs/promises');",
        "const pkg = require('pkg');",
      ),
    ];
    const violations = checkImports(tree, RULES);
    expect(at(violations, 'loader', 'engine/planted.ts')).toEqual([
      '[loader] engine/planted.ts:1: uses createRequire',
      '[loader] engine/planted.ts:2: uses createRequire',
    ]);
    expect(at(violations, 'loader', 'store/planted.ts')).toEqual([
      '[loader] store/planted.ts:2: uses createRequire',
    ]);
    expect(at(violations, 'loader', 'audit/planted.ts')).toEqual([
      '[loader] audit/planted.ts:2: import(name) of a computed specifier',
      '[loader] audit/planted.ts:3: import(`./${name}.ts`) of a computed specifier',
    ]);
    expect(at(violations, 'loader', 'cli/planted.ts')).toEqual(['[loader] cli/planted.ts:2: uses require()']);
  });

  it('folder-cycle: two folders importing each other', () => {
    const tree = [
      ...files,
      planted('engine/planted.ts', "import { decisionId } from '../decisions/ids.ts';"),
    ];
    expect(
      checkImports(tree, RULES)
        .filter((v) => v.rule === 'folder-cycle')
        .map((v) => v.message),
    ).toContain('decisions → engine → decisions');
  });

  it('folder-table: a folder missing from the table, and a row for a folder src/ lacks', () => {
    const folders = [...new Set(files.map((f) => f.path.split('/')[0]!).filter((f) => !f.endsWith('.ts')))];
    expect(checkFolderTable([...folders, 'reports'], RULES).map(describeViolation)).toContain(
      '[folder-table] reports/: the folder has no row in the rules',
    );
    const withoutGate = { ...RULES, folders: RULES.folders.filter((f) => f.name !== 'gate') };
    expect(checkFolderTable(folders, withoutGate).map(describeViolation)).toEqual([
      '[folder-table] gate/: the folder has no row in the rules',
    ]);
    expect(
      checkFolderTable(
        folders.filter((f) => f !== 'gate'),
        RULES,
      ).map(describeViolation),
    ).toEqual(['[folder-table] gate/: the rules name a folder src/ does not have']);
    const tree = [...files, planted('reports/page.ts', "import fp from 'fastify-plugin';")];
    expect(
      checkArchitecture(tree, tables, RULES)
        .filter((v) => v.rule === 'folder-table')
        .map(describeViolation),
    ).toEqual(['[folder-table] reports/: the folder has no row in the rules']);
  });

  it('table-owner: SQL on a table from a module that does not own it, however the SQL names it', () => {
    const tree = [
      ...files,
      planted(
        'http/planted.ts',
        "db.query('SELECT * FROM decision_log WHERE id = $1');",
        'db.query(`SELECT a.id FROM approvals a JOIN public.exceptions e ON e.id = a.id ${where}`);',
        'db.query({ text: \'DELETE FROM "replicas"\' });',
        "db.query('TRUNCATE policy_revisions');",
        "db.query('COPY chain_heads TO STDOUT');",
        "db.query('UPDATE fleet_state SET version = 2');",
        '// SELECT * FROM decision_log in a comment is not SQL',
      ),
      planted('audit/decision-log.ts', "export const sql = 'SELECT * FROM decision_log';"),
    ];
    const violations = checkTableOwners(tree, RULES);
    expect(at(violations, 'table-owner', 'http/planted.ts')).toEqual([
      '[table-owner] http/planted.ts:1: SQL on decision_log, owned by audit/decision-log.ts',
      '[table-owner] http/planted.ts:2: SQL on approvals, owned by grants/grants-sql.ts',
      '[table-owner] http/planted.ts:2: SQL on exceptions, owned by grants/grants-sql.ts',
      '[table-owner] http/planted.ts:3: SQL on replicas, owned by store/fleet.ts',
      '[table-owner] http/planted.ts:4: SQL on policy_revisions, owned by bundles/revisions.ts',
      '[table-owner] http/planted.ts:5: SQL on chain_heads, owned by audit/decision-log.ts',
      '[table-owner] http/planted.ts:6: SQL on fleet_state, owned by store/fleet.ts',
    ]);
    expect(at(violations, 'table-owner', 'audit/decision-log.ts')).toEqual([]);
  });

  it('table-list: a migration table no module owns, an owner of no table, an owner that does not exist', () => {
    expect(checkTableList(files, [...tables, 'report_runs'], RULES).map(describeViolation)).toEqual([
      '[table-list] report_runs: a migration creates it; no module owns it',
    ]);
    const { replicas: _, ...withoutReplicas } = RULES.tables;
    expect(
      checkTableList(files, tables, { ...RULES, tables: withoutReplicas }).map(describeViolation),
    ).toEqual(['[table-list] replicas: a migration creates it; no module owns it']);
    expect(
      checkTableList(
        files,
        tables.filter((t) => t !== 'replicas'),
        RULES,
      ).map(describeViolation),
    ).toEqual(['[table-list] replicas: owned in the rules; no migration creates it']);
    const gone = {
      ...RULES,
      tables: { ...RULES.tables, replicas: { folder: RULES.folders[0]!, file: 'gone.ts' } },
    };
    expect(checkTableList(files, tables, gone).map(describeViolation)).toEqual([
      `[table-list] replicas: its owner ${RULES.folders[0]!.name}/gone.ts does not exist`,
    ]);
  });
});
describe('docs/architecture.md', () => {
  it('holds the folder table, the table owners and the rules as test/architecture/rules.ts renders them', () => {
    expect(withRules(doc, RULES), 'run: node scripts/architecture-doc.ts').toBe(doc);
  });

  it('a stale table in the doc is caught', () => {
    const stale = doc.replace(/^\| `src\/bundles\/` .*\n/m, '');
    expect(stale).not.toBe(doc);
    expect(withRules(stale, RULES)).not.toBe(stale);
    expect(withRules(doc, withFolder(RULES, 'bundles', { imports: [] }))).not.toBe(doc);
  });

  const exists = (name: string) =>
    name.includes('/')
      ? [repo, src, path.join(repo, 'docs')].some((dir) => existsSync(path.join(dir, name)))
      : basenames.has(name);
  const basenames = new Set(
    [...filesUnder(src, '.ts'), ...filesUnder(path.join(repo, 'docs'), '.md')].map((f) => path.basename(f)),
  );
  const sources = [
    ...files.map((f) => f.text),
    ...filesUnder(path.join(repo, 'packages/sdk/src'), '.ts').map((f) => readFileSync(f, 'utf8')),
  ].join('\n');

  it('points only at files and names that exist', () => {
    expect(stalePointers(doc, exists, sources)).toEqual([]);
  });

  it('a stale pointer is caught', () => {
    const planted = `${doc}\nSee \`src/audit/gone.ts\`, \`gone-file.ts\`, \`src/gone/\` and \`goneFunction()\`.`;
    expect(stalePointers(planted, exists, sources)).toEqual([
      'src/audit/gone.ts',
      'gone-file.ts',
      'src/gone/',
      'goneFunction',
    ]);
  });

  it('shows one decision from the route to the commit in at most 8 files', () => {
    const path = section(doc, 'One decision, from the route to the commit');
    expect(path).not.toBe('');
    const named = filePointers(path).filter((name) => name.endsWith('.ts'));
    expect(named.length, named.join(', ')).toBeLessThanOrEqual(8);
  });
});
