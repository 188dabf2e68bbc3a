/**
 * Every curl example in README.md's "Asking for a decision" states its result, and the app on the
 * built-in bundle answers exactly that — today and on a day inside a change-freeze window of
 * policies/data.json — so the README and the behaviour cannot drift and no example depends on the date.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { App } from '../../src/http/app.ts';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

const root = path.resolve(import.meta.dirname, '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

/** What an example says its answer is: per decision (one, or one per batch item). */
interface Stated {
  allow: boolean;
  /** Control ids named in the statement: the decision's violations are exactly these. */
  controls: string[];
}

interface Example {
  route: string;
  body: unknown;
  statement: string;
}

/** The decisions an example states: one, or one per `results[i]` of a batch. */
function stated(example: Example): Stated[] {
  const parts = example.statement.split(/results\[\d+\]/).slice(1);
  return parts.length > 0 ? parts.map(statedOf) : [statedOf(example.statement)];
}

function statedOf(text: string): Stated {
  const verdict = /"?(?:allow|result|decision)"?:\s*(true|false)/.exec(text);
  if (!verdict) throw new Error(`no allow/result/decision in the stated result: ${text}`);
  return {
    allow: verdict[1] === 'true',
    controls: [...new Set(text.match(/\b[A-Z]+-\d{3}\b/g) ?? [])].sort(),
  };
}

/** The curl examples of the section, each with its JSON body and the `# → …` result after it. */
function examples(): Example[] {
  const start = readme.indexOf('## Asking for a decision');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  const found: Example[] = [];
  for (const match of section.matchAll(
    /^curl [^\n]*?localhost:8080(\S+)[\s\S]*?-d '([^']*)'\n((?:#[^\n]*\n)*)/gm,
  )) {
    const [, route, json, comments] = match as unknown as [string, string, string, string];
    const lines = comments.split('\n');
    const first = lines.findIndex((l) => l.startsWith('# →'));
    // The statement: the `# →` line and the indented continuation lines right after it.
    const kept: string[] = [];
    if (first >= 0) {
      kept.push(lines[first]!);
      for (const line of lines.slice(first + 1)) {
        if (!/^# {2,}/.test(line)) break;
        kept.push(line);
      }
    }
    const statement = kept.map((l) => l.replace(/^#\s*(→\s*)?/, '').trim()).join(' ');
    found.push({ route, body: JSON.parse(json), statement });
  }
  return found;
}

/** allow + controls of each decision in a response, in the shape of the route. */
function answered(route: string, body: Record<string, unknown>): Stated[] {
  const controls = (d: Record<string, unknown>) =>
    [...new Set(((d.violations as { control: string }[]) ?? []).map((v) => v.control))].sort();
  if (route.startsWith('/v1/decisions/batch')) {
    return (body.results as Record<string, unknown>[]).map((r) => ({
      allow: r.allow as boolean,
      controls: controls(r),
    }));
  }
  if (route.startsWith('/v1/data/')) return [{ allow: body.result as boolean, controls: [] }];
  if (route.startsWith('/access/v1/')) return [{ allow: body.decision as boolean, controls: [] }];
  return [{ allow: body.allow as boolean, controls: controls(body) }];
}

const all = examples();
let app: App;
let injectWithToken: Awaited<ReturnType<typeof buildTestApp>>['injectWithToken'];
beforeAll(async () => {
  ({ app, injectWithToken } = await buildTestApp({ bundlePath: DEFAULT_BUNDLE }));
});
afterAll(async () => {
  vi.useRealTimers();
  await app.close();
});

describe('README "Asking for a decision"', () => {
  it('has the curl examples of every surface', () => {
    expect(all.map((e) => e.route)).toEqual([
      '/v1/decisions',
      '/v1/decisions',
      '/v1/decisions',
      '/v1/decisions/batch',
      '/v1/data/verdict/allow',
      '/access/v1/evaluation',
    ]);
  });

  it.each(all.map((e, i) => [i, e.route, e] as const))(
    'example %i (%s) states its result',
    (_i, _route, example) => {
      expect(example.statement, JSON.stringify(example.body).slice(0, 120)).not.toBe('');
      expect(() => stated(example)).not.toThrow();
    },
  );

  // Today, and on days inside the change-freeze windows of policies/data.json (REL-007).
  describe.each(['now', '2026-12-24T12:00:00Z', '2027-03-30T12:00:00Z'])('on %s', (day) => {
    beforeAll(() => {
      if (day !== 'now') {
        vi.useFakeTimers({ toFake: ['Date'] });
        vi.setSystemTime(new Date(day));
      }
    });
    afterAll(() => {
      vi.useRealTimers();
    });

    it.each(all.map((e, i) => [i, e.route, e] as const))(
      'example %i (%s) answers what the README states',
      async (_i, route, example) => {
        const response = await injectWithToken({
          method: 'POST',
          url: route,
          payload: example.body as object,
        });
        expect(response.statusCode, response.body).toBe(200);
        expect(answered(route, response.json()), example.statement).toEqual(stated(example));
      },
    );
  });
});
