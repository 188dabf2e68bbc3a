/**
 * README.md's "Guard what models read and write": every curl example states its answer as JSON after
 * `# →`, and the app on the built-in bundle answers at least that (a subset match: arrays exactly as
 * long, objects with at least the fields stated), so the README and the behaviour cannot drift.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

const root = path.resolve(import.meta.dirname, '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

interface Example {
  route: string;
  body: Record<string, unknown>;
  stated: unknown;
}

function examples(): Example[] {
  const start = readme.indexOf('## Guard what models read and write');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const found: Example[] = [];
  for (const match of section.matchAll(
    /^curl [^\n]*?localhost:8080(\S+)[\s\S]*?-d '([^']*)'\n((?:#[^\n]*\n)*)/gm,
  )) {
    const [, route, json, comments] = match as unknown as [string, string, string, string];
    const lines = comments.split('\n');
    const first = lines.findIndex((l) => l.startsWith('# →'));
    const kept = [lines[first]!.replace(/^# →/, '')];
    for (const line of lines.slice(first + 1)) {
      if (!/^# {2,}/.test(line)) break;
      kept.push(line.slice(1));
    }
    found.push({ route, body: JSON.parse(json), stated: JSON.parse(kept.join(' ')) });
  }
  return found;
}

let app: Awaited<ReturnType<typeof buildTestApp>>;
beforeAll(async () => {
  app = await buildTestApp({ bundlePath: DEFAULT_BUNDLE });
});
afterAll(async () => app?.close());

describe('README: Guard what models read and write', () => {
  const all = examples();

  it('has its five examples', () => {
    expect(all).toHaveLength(5);
  });

  it.each(all.map((example, i) => [i, example] as const))(
    'example %i answers as stated',
    async (_i, example) => {
      const res = await app.injectWithToken({ method: 'POST', url: example.route, payload: example.body });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject(example.stated as Record<string, unknown>);
    },
  );
});
