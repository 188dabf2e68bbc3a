/**
 * AuthZEN search on the built-in bundle answers out of the box: the default policies carry an entity
 * catalog derived from their own data (the agents and tools of policies/data.json), so "which tools
 * may support-bot call?" has an answer without any configuration.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

const data = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../policies/data.json'), 'utf8'))
  .verdict_data as { agents: Record<string, { tools: string[] }>; tools: Record<string, unknown> };
let built: Awaited<ReturnType<typeof buildTestApp>>;

beforeAll(async () => {
  built = await buildTestApp({ bundlePath: DEFAULT_BUNDLE });
});
afterAll(async () => built?.app.close());

const context = { session: { tool_calls: 2 }, data_classification: 'internal' };

async function search(
  kind: 'subject' | 'resource' | 'action',
  body: object,
): Promise<{ results: unknown[] }> {
  const response = await built.injectWithToken({
    method: 'POST',
    url: `/access/v1/search/${kind}`,
    payload: { context, ...body, page: { limit: 1000 } },
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

describe('AuthZEN search on the built-in bundle', () => {
  it('which tools may support-bot call: its own low-risk tools, nothing outside its list', async () => {
    const { results } = await search('resource', {
      subject: { type: 'agent', id: 'support-bot' },
      action: { name: 'tool.call' },
      resource: { type: 'tool' },
    });
    const ids = (results as { type: string; id: string }[]).map((r) => `${r.type}:${r.id}`);
    expect(ids).toContain('tool:search_kb');
    expect(ids).toContain('tool:create_ticket');
    for (const id of ids) expect(data.agents['support-bot']!.tools).toContain(id.slice('tool:'.length));
  });

  it('which agents may call search_kb: the agents whose list names it', async () => {
    const { results } = await search('subject', {
      subject: { type: 'agent' },
      action: { name: 'tool.call' },
      resource: { type: 'tool', id: 'search_kb' },
    });
    const expected = Object.entries(data.agents)
      .filter(([, agent]) => agent.tools.includes('search_kb'))
      .map(([id]) => ({ type: 'agent', id }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(results).toEqual(expected);
  });

  it('which actions support-bot may take on search_kb: tool.call', async () => {
    const { results } = await search('action', {
      subject: { type: 'agent', id: 'support-bot' },
      resource: { type: 'tool', id: 'search_kb' },
    });
    expect(results).toEqual([{ name: 'tool.call' }]);
  });
});
