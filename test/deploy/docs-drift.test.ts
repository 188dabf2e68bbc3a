import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPES } from '../../src/auth/caller.ts';
import type { App } from '../../src/http/app.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

/**
 * Docs that drift from the code mislead the first hour of a new user: a file that is not there, a
 * route or a scope that does not exist yet, a variable the tests do not read. A doc may name a
 * planned feature only on a line that says "not yet available".
 */
const root = path.resolve(import.meta.dirname, '../..');
const DOCS = [
  'README.md',
  'policies/CONTROLS.md',
  ...execFileSync('git', ['ls-files', 'docs/*.md'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean),
];
const PLANNED = /not yet available/i;
/** A line of the OPA compatibility table that names OPA routes Verdict does not offer. */
const UNSUPPORTED = /not supported/i;

/** Every line of every doc, with where it is. */
function lines(): { doc: string; line: string; at: string }[] {
  return DOCS.flatMap((doc) =>
    readFileSync(path.join(root, doc), 'utf8')
      .split('\n')
      .map((line, i) => ({ doc, line, at: `${doc}:${i + 1}` })),
  );
}

let app: App;
beforeAll(async () => {
  // The whole route table, auditor, bundle, waiver and approval routes included (on stubs never called).
  ({ app } = await buildTestApp({ bundlePath: contractFixtureBundle(), allRoutes: true }));
});
afterAll(async () => app?.close());

describe('docs match the repository and the code', () => {
  it('every file a doc links to or names as *.md exists', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n');
    const basenames = new Set(tracked.map((f) => path.basename(f)));
    const missing: string[] = [];
    for (const { doc, line, at } of lines()) {
      for (const [, target] of line.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        if (!existsSync(path.resolve(root, path.dirname(doc), target!))) missing.push(`${at}: ${target}`);
      }
      for (const [, name] of line.matchAll(/`([\w./-]+\.md)`/g)) {
        if (!basenames.has(path.basename(name!))) missing.push(`${at}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('every route a doc names exists, unless the line says it is not yet available', () => {
    const routes = app.routeProtection().map(
      (r) =>
        new RegExp(
          `^${r.url
            .replace(/[.+?^$|[\]\\]/g, '\\$&')
            .replace(/:\w+/g, '[^/]+')
            .replace(/\/\*$/, '(/.*)?')}$`,
        ),
    );
    const absent: string[] = [];
    let named = 0;
    for (const { line, at } of lines()) {
      if (PLANNED.test(line) || UNSUPPORTED.test(line)) continue;
      for (const [found] of line.matchAll(
        /\/(?:v1|access|health|\.well-known\/authzen)(?:[\w./*-]|\{[\w,]*\})*(?:\(s\))?/g,
      )) {
        const base = found!.replace(/\(s\)$/, '');
        // `/search/{subject,resource,action}` names three routes; `{path}` is a parameter.
        const alternatives = /\{(\w+(?:,\w+)+)\}/.exec(base);
        const expanded = alternatives
          ? alternatives[1]!.split(',').map((name) => base.replace(alternatives[0], name))
          : [base];
        const variants = found!.endsWith('(s)') ? expanded.flatMap((b) => [b, `${b}s`]) : expanded;
        for (const variant of variants) {
          const url = variant.replace(/\{[^}]*\}/g, 'x').replace(/(.)\/$/, '$1');
          named++;
          if (!routes.some((route) => route.test(url))) absent.push(`${at}: ${found}`);
        }
      }
    }
    expect(named).toBeGreaterThan(20);
    expect(absent).toEqual([]);
  });

  it('every scope a doc names is one a token can carry, unless the line says it is not yet available', () => {
    const unknown: string[] = [];
    for (const { line, at } of lines()) {
      if (PLANNED.test(line) || UNSUPPORTED.test(line)) continue;
      for (const [scope] of line.matchAll(
        /(?<!run )\b(?:decisions|audit|bundles|exceptions|approvals):[a-z*]+/g,
      )) {
        if (!(SCOPES as readonly string[]).includes(scope!)) unknown.push(`${at}: ${scope}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it("scripts/test.sh's header names the variables the tests read", () => {
    const header = readFileSync(path.join(root, 'scripts/test.sh'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('#'))
      .join('\n');
    const named = [...header.matchAll(/\b[A-Z][A-Z0-9_]*_URL\b/g)].map((m) => m[0]);
    expect(named).toEqual(expect.arrayContaining(['TEST_DATABASE_URL', 'TEST_REDIS_URL']));
    // The one module that reads them (test/support/services.ts).
    const services = readFileSync(path.join(root, 'test/support/services.ts'), 'utf8');
    for (const name of named) expect(services, name).toContain(`env.${name}`);
  });
});
