import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../src/decisions/types.ts';
import { type As, type Replica, startReplicas } from '../grants/replicas.support.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// The live inbox on every replica: two replicas on one Postgres and one Redis; an inbox open on
// replica B (its server-sent events) shows a request opened on replica A, and loses it when a
// person decides it on A — within a second each.

const agentRuntime: As = { sub: 'svc-agent-runtime', scopes: ['decisions:evaluate'] };
const alice: As = { sub: 'alice@example.com', scopes: ['approvals:grant'], human: true };
const aliceCaller: Caller = {
  sub: alice.sub,
  iss: null,
  clientId: null,
  scopes: ['approvals:grant'],
  principalType: 'human',
};

function call(path: string) {
  return {
    subject: { type: 'agent', id: 'code-agent', properties: { on_behalf_of: 'user:42' } },
    action: { name: 'tool.call' },
    resource: { type: 'tool', id: 'read_file', properties: { risk: 'high', arguments: { path } } },
    context: { session: { untrusted_content: false, tool_calls: 1 }, data_classification: 'internal' },
  };
}

/** Reads an SSE stream's `inbox` events into `events` until aborted; `ended` settles when the server ends it. */
async function follow(
  url: string,
  cookie: string,
  events: string[],
  signal: AbortSignal,
): Promise<{ ended: Promise<void> }> {
  const res = await fetch(url, { headers: { cookie, accept: 'text/event-stream' }, signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const ended = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.includes('event: inbox')) {
            events.push(
              block
                .split('\n')
                .filter((l) => l.startsWith('data: '))
                .map((l) => l.slice(6))
                .join('\n'),
            );
          }
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // aborted
    }
  })();
  return { ended };
}

async function within(ms: number, probe: () => boolean): Promise<number> {
  const started = Date.now();
  while (!probe()) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - started;
}

describe('the live inbox on every replica (Postgres, Redis bus)', () => {
  let tdb: TestDatabase;
  let a: Replica;
  let b: Replica;
  let close: () => Promise<void>;
  let bUrl: string;
  const aborter = new AbortController();

  beforeAll(async () => {
    tdb = await createTestDatabase('console_live');
    const started = await startReplicas(tdb.url, 2, { VERDICT_GRANTS_POLL_MS: '60000' });
    [a, b] = started.replicas as [Replica, Replica];
    close = started.close;
    bUrl = await b.verdict.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    aborter.abort();
    await close?.();
    await tdb?.drop();
  });

  it('an inbox opened after a change that no open inbox heard shows it (no stale shared table)', async () => {
    const sessions = b.verdict.sessions as NonNullable<typeof b.verdict.sessions>;
    const { id } = await sessions.open(aliceCaller, 'token');
    // An inbox opens on B, renders the (empty) table, and closes: B has no open inbox.
    const first = new AbortController();
    const before: string[] = [];
    await follow(`${bUrl}/console/approvals/live`, `verdict_session=${id}`, before, first.signal);
    await within(5_000, () => before.length >= 1);
    first.abort();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A request opens while no inbox listens on B; the next inbox opened there shows it at once.
    const denied = (
      await a.call('POST', '/v1/decisions', agentRuntime, call('/workspace/unheard.yaml'))
    ).json();
    const approvalId = denied.approval_request.id as string;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after: string[] = [];
    await follow(`${bUrl}/console/approvals/live`, `verdict_session=${id}`, after, aborter.signal);
    await within(5_000, () => after.length >= 1);
    expect(after[0]).toContain(approvalId);
    const decided = await a.call('POST', `/v1/approvals/${approvalId}/deny`, alice, { reason: 'test' });
    expect(decided.statusCode).toBe(200);
    await within(2_000, () => !(after.at(-1) as string).includes(approvalId));
  });

  it('a request opened on A appears on B’s open inbox, and leaves it when decided on A', async () => {
    const url = bUrl;
    const { id } = await (b.verdict.sessions as NonNullable<typeof b.verdict.sessions>).open(
      aliceCaller,
      'token',
    );
    const events: string[] = [];
    await follow(`${url}/console/approvals/live`, `verdict_session=${id}`, events, aborter.signal);
    await within(5_000, () => events.length >= 1);
    expect(events[0]).toContain('No pending approval requests');

    const denied = (await a.call('POST', '/v1/decisions', agentRuntime, call('/workspace/live.yaml'))).json();
    const approvalId = denied.approval_request.id as string;
    // Within a second on an idle machine; 2 s leaves a busy CI host its slack.
    expect(await within(2_000, () => events.some((e) => e.includes(approvalId)))).toBeLessThan(2_000);

    const granted = await a.call('POST', `/v1/approvals/${approvalId}/approve`, alice, { reason: 'ok' });
    expect(granted.statusCode).toBe(200);
    expect(await within(2_000, () => !(events.at(-1) as string).includes(approvalId))).toBeLessThan(2_000);
  });

  it('one read of the pending requests per change serves every open inbox of a replica', async () => {
    const sessions = b.verdict.sessions as NonNullable<typeof b.verdict.sessions>;
    const url = `http://127.0.0.1:${(b.verdict.app.server.address() as { port: number }).port}`;
    const inboxes = Array.from({ length: 5 }, () => [] as string[]);
    for (const events of inboxes) {
      const { id } = await sessions.open(aliceCaller, 'token');
      await follow(`${url}/console/approvals/live`, `verdict_session=${id}`, events, aborter.signal);
    }
    await within(5_000, () => inboxes.every((events) => events.length >= 1));
    const store = (b.verdict.grants as NonNullable<typeof b.verdict.grants>).approvals;
    const list = store.list.bind(store);
    let reads = 0;
    store.list = (query) => {
      reads += 1;
      return list(query);
    };
    try {
      const denied = (
        await a.call('POST', '/v1/decisions', agentRuntime, call('/workspace/shared.yaml'))
      ).json();
      const approvalId = denied.approval_request.id as string;
      await within(2_000, () => inboxes.every((events) => events.some((e) => e.includes(approvalId))));
      // One notice, one read: not one per open inbox (the 30 s tick may add one more).
      expect(reads).toBeLessThanOrEqual(2);
    } finally {
      store.list = list;
    }
  });

  it('a stream ends with its session: after sign-out, the next change closes it', async () => {
    const sessions = b.verdict.sessions as NonNullable<typeof b.verdict.sessions>;
    const url = `http://127.0.0.1:${(b.verdict.app.server.address() as { port: number }).port}`;
    const { id } = await sessions.open(aliceCaller, 'token');
    const events: string[] = [];
    const { ended } = await follow(
      `${url}/console/approvals/live`,
      `verdict_session=${id}`,
      events,
      aborter.signal,
    );
    await within(5_000, () => events.length >= 1);
    await sessions.revoke(id);
    await a.call('POST', '/v1/decisions', agentRuntime, call('/workspace/after-sign-out.yaml'));
    let closed = false;
    void ended.then(() => {
      closed = true;
    });
    await within(5_000, () => closed);
    expect(events).toHaveLength(1);
  });

  it('refuses the live feed without a session; an unknown console page is a 404 page', async () => {
    const url = `http://127.0.0.1:${(b.verdict.app.server.address() as { port: number }).port}`;
    const res = await fetch(`${url}/console/approvals/live`, {
      headers: { accept: 'text/event-stream' },
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    // An unknown console page is the console's own 404 page, not the API's token challenge.
    const missing = await fetch(`${url}/console/no-such-page`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('text/html');
    expect(await missing.text()).toContain('There is no such page');
  });
});
