import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { TABLE_OWNERS } from '../../src/store/table-owners.ts';

const root = path.resolve(import.meta.dirname, '../..');
const src = path.join(root, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** The text of every string and template literal of a file (a template's substitutions as ` ? `). */
function literalsOf(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) out.push(node.text);
    else if (ts.isTemplateExpression(node)) {
      out.push([node.head.text, ...node.templateSpans.map((span) => span.literal.text)].join(' ? '));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The tables of `tables` that a piece of SQL text names after FROM, JOIN, INTO, UPDATE, DELETE FROM or TABLE. */
function tablesNamed(sql: string, tables: ReadonlySet<string>): string[] {
  const named = new Set<string>();
  for (const match of sql.matchAll(
    /\b(?:FROM|JOIN|INTO|UPDATE|TABLE(?: IF (?:NOT )?EXISTS)?)\s+([a-z_][a-z0-9_]*)/g,
  )) {
    if (tables.has(match[1]!)) named.add(match[1]!);
  }
  return [...named];
}

/** The tables the migrations create. */
function migrationTables(): string[] {
  const dir = path.join(root, 'migrations');
  const names = new Set<string>();
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.sql'))) {
    const text = readFileSync(path.join(dir, file), 'utf8');
    for (const match of text.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?([a-z_][a-z0-9_]*)/g))
      names.add(match[1]!);
  }
  return [...names].sort();
}

const owners: Record<string, string> = TABLE_OWNERS;
const tables = new Set(Object.keys(owners));

/** `file: table` for every table a file's strings name that the file does not own. */
function trespasses(file: string, text: string): string[] {
  return literalsOf(file, text).flatMap((literal) =>
    tablesNamed(literal, tables)
      .filter((table) => owners[table] !== file)
      .map((table) => `${file}: ${table} (owned by ${owners[table]})`),
  );
}

describe('each table has one owning module (src/store/table-owners.ts)', () => {
  it('finds a table named in a string or a template, and not in comments or prose', () => {
    const text = [
      '// SELECT * FROM decision_log in a comment',
      "const a = { text: 'SELECT seq FROM chain_heads WHERE writer_id = $1' };",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the planted source holds a template
      'const b = `UPDATE fleet_state SET version = ${1} WHERE topic = $1`;',
      "const c = 'missing from the package';",
      'const d = `DELETE FROM replicas WHERE id = $1`;',
    ].join('\n');
    expect(trespasses('audit/planted.ts', text)).toEqual([
      'audit/planted.ts: chain_heads (owned by audit/decision-log.ts)',
      'audit/planted.ts: fleet_state (owned by store/fleet.ts)',
      'audit/planted.ts: replicas (owned by store/fleet.ts)',
    ]);
  });

  it('every table the migrations create has an owner, and every owner exists', () => {
    expect(migrationTables().filter((table) => !tables.has(table))).toEqual([]);
    expect(Object.values(owners).filter((file) => !existsSync(path.join(src, file)))).toEqual([]);
  });

  it('no module of src/ names a table it does not own', () => {
    const offenders = sourceFiles(src).flatMap((full) =>
      trespasses(path.relative(src, full).split(path.sep).join('/'), readFileSync(full, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });
});
