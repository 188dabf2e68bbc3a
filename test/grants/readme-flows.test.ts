/**
 * README.md's "Waivers and human approvals" section, run: every `curl` line in order, against a
 * real Verdict on a real Postgres, with the tokens its `npm run token` lines ask for, the ids its
 * `VAR=$(curl … | jq -r path)` lines capture, and each `# ⇒ <status> [key: value]` checked.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/auth/caller.ts';
import { SCOPES } from '../../src/auth/caller.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { type As, type Replica, startReplicas } from './replicas.support.ts';

const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');

interface Step {
  capture: { variable: string; path: string } | null;
  method: 'GET' | 'POST';
  url: string;
  token: string;
  body: string | undefined;
  status: number;
  expect: [string, string][];
}

/** The section's shell block. */
function block(): string {
  const start = readme.indexOf('## Waivers and human approvals');
  const fence = readme.indexOf('```sh\n', start);
  return readme.slice(fence + 6, readme.indexOf('\n```', fence + 6));
}

/** The callers the `npm run token` lines mint ($TOKEN is the start banner's: every scope). */
function tokens(text: string): Map<string, As> {
  const callers = new Map<string, As>([['TOKEN', { sub: 'dev', scopes: SCOPES }]]);
  for (const m of text.matchAll(/^export (\w+)=\$\(npm run -s token -- (.*)\)$/gm)) {
    const args = m[2]!;
    callers.set(m[1]!, {
      sub: /--sub (\S+)/.exec(args)![1]!,
      scopes: /--scope (\S+)/.exec(args)![1]!.split(',') as Scope[],
      human: args.includes('--human'),
    });
  }
  return callers;
}

function steps(text: string): Step[] {
  const lines = text.split('\n');
  const found: Step[] = [];
  lines.forEach((line, i) => {
    const m = /^(?:(\w+)=\$\()?curl -s (.*?)(?: \| jq -r (\S+)\))?$/.exec(line);
    if (!m) return;
    const args = m[2]!;
    const expectation = /^# ⇒ (\d{3})(.*)$/.exec(lines[i + 1] ?? '');
    if (!expectation) throw new Error(`no "# ⇒" line after: ${line}`);
    const body = /-d '(.*)'$/.exec(args)?.[1];
    found.push({
      capture: m[1] ? { variable: m[1], path: m[3]! } : null,
      method: args.includes('-X POST') || body !== undefined ? 'POST' : 'GET',
      url: /"?localhost:8080([^\s"]+)"?/.exec(args)![1]!,
      token: /Bearer \$(\w+)/.exec(args)![1]!,
      body,
      status: Number(expectation[1]),
      expect: [...expectation[2]!.matchAll(/(\w+): (\S+)/g)].map((e) => [e[1]!, e[2]!]),
    });
  });
  return found;
}

describe('README: waivers and human approvals, as written', () => {
  let tdb: TestDatabase;
  let replica: Replica;
  let close: () => Promise<void>;

  beforeAll(async () => {
    tdb = await createTestDatabase('grants_readme');
    const started = await startReplicas(tdb.url, 1);
    replica = started.replicas[0]!;
    close = started.close;
  });
  afterAll(async () => {
    await close?.();
    await tdb?.drop();
  });

  it('every command answers what the README says', async () => {
    const text = block();
    const callers = tokens(text);
    expect([...callers.keys()].sort()).toEqual(['APPROVER', 'HUMAN', 'REQUESTER', 'TOKEN']);
    const all = steps(text);
    expect(all.length).toBe(13);
    const vars = new Map<string, string>([['EXPIRES', new Date(Date.now() + 14 * 86_400_000).toISOString()]]);
    const expand = (s: string) =>
      s
        .replace(/'"\$(\w+)"'/g, (_, v: string) => vars.get(v)!)
        .replace(/\$(\w+)/g, (_, v: string) => vars.get(v) ?? `$${v}`);
    for (const step of all) {
      const res = await replica.call(
        step.method,
        expand(step.url),
        callers.get(step.token)!,
        step.body === undefined ? undefined : JSON.parse(expand(step.body)),
      );
      const where = `${step.method} ${step.url}`;
      expect(res.statusCode, `${where}: ${res.body}`).toBe(step.status);
      const json = res.json();
      for (const [key, value] of step.expect) expect(String(json[key]), where).toBe(value);
      if (step.capture) {
        const captured = step.capture.path
          .split('.')
          .filter(Boolean)
          .reduce((v: Record<string, unknown>, k) => v?.[k] as Record<string, unknown>, json);
        expect(typeof captured, `${where} captures ${step.capture.path}`).toBe('string');
        vars.set(step.capture.variable, captured as unknown as string);
      }
    }
    // What the prose promises: the waiver's history holds every step, the approval was used once.
    expect(vars.get('EXC')).toMatch(/^exc_/);
    const waiver = (
      await replica.call('GET', `/v1/exceptions/${vars.get('EXC')}`, callers.get('REQUESTER')!)
    ).json();
    expect(waiver.history.map((e: { action: string }) => e.action)).toEqual([
      'request',
      'activate',
      'revoke',
    ]);
    const approval = (
      await replica.call('GET', `/v1/approvals/${vars.get('APR')}`, callers.get('TOKEN')!)
    ).json();
    expect(approval).toMatchObject({ state: 'granted', uses: 1, max_uses: 1, decided_by: 'alice' });
  });
});
