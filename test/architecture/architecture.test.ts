import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOMAIN_FOLDERS, folderCycles, folderGraph, frameworkImports, importsOf } from './imports.ts';

const src = path.resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

const files = sourceFiles(src).map((file) => ({
  file: path.relative(src, file),
  text: readFileSync(file, 'utf8'),
}));

describe('import rules (docs/architecture.md)', () => {
  it('reads the import specifiers of a file, static and dynamic, and ignores comments and strings', () => {
    const text = [
      "import type { A } from '../engine/engine.ts';",
      "import fastify from 'fastify';",
      "export { b } from './b.ts';",
      "const c = await import('../store/open-database.ts');",
      "// import nothing from 'fastify-in-a-comment';",
      'const s = "import x from \'not-an-import\'";',
    ].join('\n');
    expect(importsOf(text)).toEqual([
      '../engine/engine.ts',
      'fastify',
      './b.ts',
      '../store/open-database.ts',
    ]);
  });

  it('no domain folder imports Fastify (or a Fastify plugin)', () => {
    const offenders = files
      .filter(({ file }) => DOMAIN_FOLDERS.includes(file.split(path.sep)[0]!))
      .flatMap(({ file, text }) => frameworkImports(text).map((spec) => `${file} imports ${spec}`));
    expect(offenders).toEqual([]);
  });

  it('a planted Fastify import in a domain folder is caught', () => {
    for (const folder of DOMAIN_FOLDERS) {
      const planted = `import type { FastifyInstance } from 'fastify';\nexport const x = 1;`;
      expect(frameworkImports(planted), folder).toEqual(['fastify']);
    }
    expect(frameworkImports("import fp from 'fastify-plugin';")).toEqual(['fastify-plugin']);
    expect(frameworkImports("import cors from '@fastify/cors';")).toEqual(['@fastify/cors']);
    expect(frameworkImports("import { Type } from 'typebox';")).toEqual([]);
  });

  it('src folders do not import each other in a cycle', () => {
    const graph = folderGraph(files);
    expect(folderCycles(graph)).toEqual([]);
  });

  it('a planted cycle between folders is caught', () => {
    const graph = folderGraph([
      ...files,
      { file: path.join('engine', 'planted.ts'), text: "import { x } from '../decisions/service.ts';" },
    ]);
    expect(folderCycles(graph).length).toBeGreaterThan(0);
  });

  it('the folders named in docs/architecture.md are the folders of src/', () => {
    const doc = readFileSync(path.resolve(src, '../docs/architecture.md'), 'utf8');
    const folders = readdirSync(src).filter((name) => statSync(path.join(src, name)).isDirectory());
    for (const folder of folders)
      expect(doc, `docs/architecture.md names src/${folder}/`).toContain(`src/${folder}/`);
    const named = [...doc.matchAll(/`src\/([a-z-]+)\/`/g)].map((m) => m[1]!);
    for (const folder of named) expect(folders, `src/${folder}/ exists`).toContain(folder);
  });
});
