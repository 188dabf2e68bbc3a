/**
 * `VerdictClient.waitForApproval` on its own: how it polls, what ends the wait, and what does not
 * (a status read that fails is tried again; a 4xx ends it). The round trip on a real Verdict is
 * test/mcp/wait-for-approval.test.ts; here a scripted status route stands in, to script failures.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerdictClient, VerdictError } from '../../packages/sdk/src/index.ts';

/** Answers of the status route, in order; the last one repeats. */
let script: { status: number; body?: unknown }[] = [];
let reads = 0;
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const answer = script[Math.min(reads, script.length - 1)]!;
    reads += 1;
    expect(req.url).toBe('/v1/approvals/apr_1');
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body ?? { code: 'x', title: 'scripted' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

const client = () => new VerdictClient({ url, token: 't', retries: 0 });
const pending = { status: 200, body: { id: 'apr_1', state: 'pending' } };

function run(answers: typeof script) {
  script = answers;
  reads = 0;
}

describe('waitForApproval', () => {
  it('polls through a failed read until a human decides, telling its progress', async () => {
    run([
      pending,
      { status: 503 },
      pending,
      { status: 200, body: { id: 'apr_1', state: 'granted', uses: 0 } },
    ]);
    const progress: number[] = [];
    const wait = await client().waitForApproval('apr_1', {
      timeoutMs: 5_000,
      intervalMs: 20,
      onProgress: (p) => progress.push(p.elapsedMs),
    });
    expect(wait).toEqual({ state: 'granted', approval: { id: 'apr_1', state: 'granted', uses: 0 } });
    expect(reads).toBe(4);
    expect(progress).toHaveLength(3);
  });

  it('resolves denied and expired as they are', async () => {
    run([{ status: 200, body: { id: 'apr_1', state: 'denied', decided_by: 'sam' } }]);
    expect((await client().waitForApproval('apr_1', { timeoutMs: 1_000, intervalMs: 10 })).state).toBe(
      'denied',
    );
    run([pending, { status: 200, body: { id: 'apr_1', state: 'expired' } }]);
    expect((await client().waitForApproval('apr_1', { timeoutMs: 1_000, intervalMs: 10 })).state).toBe(
      'expired',
    );
  });

  it('times out while still pending, with the approval as last read', async () => {
    run([pending]);
    const started = Date.now();
    const wait = await client().waitForApproval('apr_1', { timeoutMs: 150, intervalMs: 20 });
    expect(wait).toEqual({ state: 'timed_out', approval: pending.body });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('rejects on a 4xx (an unknown id, a token without the scope) and on abort', async () => {
    run([{ status: 404, body: { code: 'approval_not_found', title: 'no approval apr_1' } }]);
    const err = await client()
      .waitForApproval('apr_1', { timeoutMs: 1_000, intervalMs: 10 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerdictError);
    expect((err as VerdictError).code).toBe('approval_not_found');

    run([pending]);
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('host cancelled')), 50);
    await expect(
      client().waitForApproval('apr_1', { timeoutMs: 5_000, intervalMs: 20, signal: abort.signal }),
    ).rejects.toThrow('host cancelled');
  });
});
