import { type ArchitectureRules, type FolderRule, modulePath, type OutsidePath, RULE_TEXT } from './rules.ts';

/** The markers around the generated part of docs/architecture.md. */
export const BEGIN =
  '<!-- generated from test/architecture/rules.ts by `node scripts/architecture-doc.ts`: begin -->';
export const END = '<!-- generated: end -->';

const code = (s: string) => `\`${s}\``;
const target = (t: FolderRule | OutsidePath) => ('name' in t ? code(t.name) : t.label);

/** The generated part of docs/architecture.md: the folder table, the table owners, the enforced rules. */
export function renderRules(rules: ArchitectureRules): string {
  const row = (
    name: string,
    owns: string,
    imports: readonly (FolderRule | OutsidePath)[],
    fastify: boolean,
  ) => {
    const allowed = [...imports.map(target), ...(fastify ? ['Fastify'] : [])];
    return `| ${name} | ${owns} | ${allowed.length ? allowed.join(', ') : '—'} |`;
  };
  const owners = new Map<string, string[]>();
  for (const [table, owner] of Object.entries(rules.tables))
    owners.set(modulePath(owner), [...(owners.get(modulePath(owner)) ?? []), table]);
  return [
    BEGIN,
    '',
    '| folder | what it owns | may import |',
    '|---|---|---|',
    ...rules.folders.map((f) => row(code(`src/${f.name}/`), f.owns, f.imports, f.fastify)),
    row('top of `src/`', rules.root.owns, rules.root.imports, rules.root.fastify),
    '',
    'Each Postgres table is read and written by the SQL of one module; every other module calls it:',
    '',
    '| module | its tables |',
    '|---|---|',
    ...[...owners].map(([module, tables]) => `| ${code(`src/${module}`)} | ${tables.map(code).join(', ')} |`),
    '',
    '`test/architecture/architecture.test.ts` checks these rules on `src/`, and each of them on a planted violation:',
    '',
    ...Object.values(RULE_TEXT).map((text, i, all) => `- ${text}${i === all.length - 1 ? '.' : ';'}`),
    '',
    END,
  ].join('\n');
}

/** The doc with its generated part replaced by the rules' rendering (or an error naming the missing markers). */
export function withRules(doc: string, rules: ArchitectureRules): string {
  const begin = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`docs/architecture.md lacks the markers ${BEGIN} … ${END}`);
  return doc.slice(0, begin) + renderRules(rules) + doc.slice(end + END.length);
}

/** The backticked file names and src/ folders of a Markdown text (`x.ts`, `src/a/b.ts`, `src/a/`; not globs). */
export function filePointers(doc: string): string[] {
  const names = [...doc.matchAll(/`(\w[\w./-]*\.(?:ts|md|sql|json)|src\/[\w/-]+\/)`/g)].map((m) => m[1]!);
  return [...new Set(names)];
}

/** The backticked code identifiers of a Markdown text that look like names in code (`camelCase`, `PascalCase`). */
export function identifierPointers(doc: string): string[] {
  const names = [...doc.matchAll(/`([a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*)(?:\([^`]*\))?`/g)].map(
    (m) => m[1]!,
  );
  return [...new Set(names)];
}

/** The section of a Markdown text under a `## ` heading that starts with `heading`. */
export function section(doc: string, heading: string): string {
  const start = doc.indexOf(`\n## ${heading}`);
  if (start < 0) return '';
  const next = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, next < 0 ? undefined : next);
}

/**
 * The pointers of a doc that lead nowhere: file names that no file has, code names that no source
 * holds. `fileExists` answers for a repository path or a bare file name; `sources` is the code.
 */
export function stalePointers(doc: string, fileExists: (name: string) => boolean, sources: string): string[] {
  return [
    ...filePointers(doc).filter((name) => !fileExists(name)),
    ...identifierPointers(doc).filter((name) => !new RegExp(`\\b${name}\\b`).test(sources)),
  ];
}
