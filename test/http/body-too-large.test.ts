/**
 * A body refused as too large must reach a real HTTP client as the 413 problem document, not as a
 * broken pipe or a reset: the server reads (and discards) a bounded amount of what the client is
 * still sending before it closes the connection (src/http/body.ts, drainRefusedBody).
 *
 * The client is Node's fetch in a process of its own: in the server's process the two share one
 * event loop, and the race that loses the answer does not happen.
 */
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.ts';
import { buildTestApp, type TestToken } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

let app: App;
let token: TestToken;
let base: string;
beforeAll(async () => {
  ({ app, token } = await buildTestApp({ bundlePath: contractFixtureBundle() }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => app?.close());

/**
 * POSTs 5 MB of valid JSON (five times the default 1 MiB limit) `TRIES` times in a row, one after
 * the other, and prints one JSON line per try: the answer, or the error fetch threw.
 */
const CLIENT = `
const body = JSON.stringify({
  subject: { type: 'user', id: 'u1' }, action: { name: 'read' }, resource: { type: 'doc', id: 'd1' },
  context: { pad: 'x'.repeat(5_000_000) },
});
const encoded = new TextEncoder().encode(body);
const chunked = () => new ReadableStream({
  start(controller) {
    for (let at = 0; at < encoded.length; at += 65536) controller.enqueue(encoded.subarray(at, at + 65536));
    controller.close();
  },
});
for (let i = 0; i < Number(process.env.TRIES); i++) {
  const requestId = 'big-' + i;
  try {
    const response = await fetch(process.env.URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + process.env.TOKEN, 'x-request-id': requestId },
      ...(process.env.CHUNKED ? { body: chunked(), duplex: 'half' } : { body }),
    });
    const text = await response.text();
    console.log(JSON.stringify({ requestId, status: response.status, type: response.headers.get('content-type'),
      id: response.headers.get('x-request-id'), text }));
  } catch (err) {
    console.log(JSON.stringify({ requestId, error: String(err.cause?.code ?? err.cause ?? err) }));
  }
}
`;

async function fetchInAnotherProcess(tries: number, chunked: boolean) {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', CLIENT], {
    env: {
      ...process.env,
      URL: `${base}/v1/decisions`,
      TOKEN: token(),
      TRIES: String(tries),
      ...(chunked ? { CHUNKED: '1' } : {}),
    },
    timeout: 100_000,
  });
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function expectProblem413(answer: Record<string, unknown>) {
  expect(answer, JSON.stringify(answer)).toMatchObject({ status: 413, id: answer.requestId });
  expect(answer.type).toMatch(/^application\/problem\+json/);
  expect(JSON.parse(String(answer.text))).toMatchObject({ status: 413, code: 'body_too_large' });
}

describe('a body over the limit, sent by fetch from another process', () => {
  it('gets 413 problem+json with its code, twenty times in a row', async () => {
    const answers = await fetchInAnotherProcess(20, false);
    expect(answers).toHaveLength(20);
    for (const answer of answers) expectProblem413(answer);
  }, 120_000);

  it('chunked (no Content-Length): the same 413 document, five times in a row', async () => {
    const answers = await fetchInAnotherProcess(5, true);
    expect(answers).toHaveLength(5);
    for (const answer of answers) expectProblem413(answer);
  }, 120_000);
});
