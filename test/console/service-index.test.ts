/** `GET /` points people to the console where Verdict serves one (issue 23), beside the API description. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

let verdict: TestVerdict;
beforeAll(async () => {
  verdict = await startTestVerdict('service_index');
});
afterAll(async () => verdict?.close());

describe('GET /', () => {
  it('links the API description and the console, without a token', async () => {
    const response = await fetch(`${verdict.url}/`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      docs: '/docs',
      openapi: '/openapi.json',
      console: '/console',
    });
    expect((await fetch(`${verdict.url}/console/login`)).status).toBe(200);
  });
});
