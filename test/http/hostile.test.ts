import type { LightMyRequestResponse } from 'fastify';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/resolve-config.ts';
import { useContractApp } from '../support/contract-app.ts';

// Hostile and malformed input at the HTTP boundary: every class is refused with a 4xx
// application/problem+json carrying a stable code, before any decision is made (so nothing is
// recorded, least of all an allow), on every POST route.

const fixture = useContractApp({ env: { VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0' } });

/** A valid envelope that the fixture policy allows (action read): a refusal cannot be the policy's. */
const allowed = {
  subject: { type: 'user', id: 'u1' },
  action: { name: 'read' },
  resource: { type: 'doc', id: 'd1' },
};

/** Each POST route, and how to wrap a hostile value so that it sits where that route reads it. */
const ROUTES: { url: string; wrap: (hostile: unknown) => unknown }[] = [
  { url: '/v1/decisions', wrap: (h) => ({ ...allowed, context: { h } }) },
  { url: '/v1/decisions/batch', wrap: (h) => ({ items: [{ ...allowed, context: { h } }] }) },
  { url: '/v1/data/verdict/echo', wrap: (h) => ({ input: { ...allowed, h } }) },
  { url: '/access/v1/evaluation', wrap: (h) => ({ ...allowed, context: { h } }) },
  { url: '/access/v1/evaluations', wrap: (h) => ({ evaluations: [{ ...allowed, context: { h } }] }) },
];

async function post(url: string, payload: string | Buffer, contentType?: string) {
  const h: Record<string, string> = {};
  if (contentType !== undefined) h['content-type'] = contentType;
  return fixture.inject({ method: 'POST', url, payload, headers: h });
}

/** The problem's stable code; the OPA data surface keeps OPA's `code` and moves ours to verdict_code. */
function codeOf(url: string, response: LightMyRequestResponse): string {
  const body = response.json();
  if (url.startsWith('/v1/data/')) {
    expect(body.message).toEqual(expect.any(String));
    return body.verdict_code;
  }
  return body.code;
}

function expectRefused(url: string, response: LightMyRequestResponse, status: number, code: string) {
  expect(response.statusCode, `${url}: ${response.body}`).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(codeOf(url, response)).toBe(code);
  // Nothing internal reaches the client: no stack frames, file paths or JS error names.
  expect(response.body).not.toMatch(/\bat .+:\d+:\d+|node_modules|\/src\/|SyntaxError|TypeError|stack/);
  // Refused before deciding: nothing recorded, so no allow either.
  expect(fixture.recorder.records.filter((r) => r.allow)).toEqual([]);
  expect(fixture.recorder.records).toHaveLength(0);
}

function nest(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { d: value };
  return value;
}

describe('hostile bodies on every POST route', () => {
  it('accepts the valid bodies the hostile cases are built from (control)', async () => {
    for (const { url, wrap } of ROUTES) {
      const response = await post(url, JSON.stringify(wrap('fine')), 'application/json');
      expect(response.statusCode, `${url}: ${response.body}`).toBe(200);
    }
    expect(fixture.recorder.records).toHaveLength(ROUTES.length);
  });

  it('body larger than bodyLimitBytes (1 MiB default) → 413 body_too_large', async () => {
    for (const { url, wrap } of ROUTES) {
      const body = JSON.stringify(wrap('x'.repeat(DEFAULTS.bodyLimitBytes)));
      expectRefused(url, await post(url, body, 'application/json'), 413, 'body_too_large');
    }
  });

  it('nesting deeper than 64 levels → 400 too_deep (64 levels in total pass)', async () => {
    for (const { url, wrap } of ROUTES) {
      expectRefused(
        url,
        await post(url, JSON.stringify(wrap(nest(70))), 'application/json'),
        400,
        'too_deep',
      );
    }
    // Exactly at the limit: the whole document is 64 levels deep → accepted.
    const response = await post('/v1/data/verdict/echo', JSON.stringify(nest(63)), 'application/json');
    expect(response.statusCode).toBe(200);
    fixture.recorder.records.length = 0;
    // A million-deep array: V8 parses it iteratively and the walk is iterative — no stack overflow.
    const deep = `{"input":${'['.repeat(500_000)}${']'.repeat(500_000)}}`;
    expectRefused('/v1/data/x', await post('/v1/data/x', deep, 'application/json'), 400, 'too_deep');
  });

  it('more than 10,000 keys in total → 400 too_many_keys', async () => {
    const wide = Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i]));
    for (const { url, wrap } of ROUTES) {
      expectRefused(
        url,
        await post(url, JSON.stringify(wrap(wide)), 'application/json'),
        400,
        'too_many_keys',
      );
    }
    // Spread over many small objects, the total still counts.
    const spread = Array.from({ length: 2_600 }, () => ({ a: 1, b: 2, c: 3, d: 4 }));
    const response = await post('/v1/decisions', JSON.stringify(ROUTES[0]!.wrap(spread)), 'application/json');
    expectRefused('/v1/decisions', response, 400, 'too_many_keys');
  });

  it('__proto__ and constructor.prototype keys → 400 forbidden_key, Object.prototype untouched', async () => {
    const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const bodies = [
      (url: string) =>
        JSON.stringify(ROUTES.find((r) => r.url === url)!.wrap('x')).replace(
          '{',
          '{"__proto__":{"polluted":"yes"},',
        ),
      (url: string) =>
        JSON.stringify(
          ROUTES.find((r) => r.url === url)!.wrap({ constructor: { prototype: { polluted: 'yes' } } }),
        ),
      // Escaped spelling: JSON.parse decodes it to __proto__ all the same.
      (url: string) =>
        JSON.stringify(ROUTES.find((r) => r.url === url)!.wrap('x')).replace(
          '{',
          '{"\\u005f_proto__":{"polluted":"yes"},',
        ),
    ];
    for (const { url } of ROUTES) {
      for (const body of bodies) {
        expectRefused(url, await post(url, body(url), 'application/json'), 400, 'forbidden_key');
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoBefore);
    // A key merely named constructor (not an object with a prototype) is ordinary data.
    const fine = JSON.stringify(ROUTES[0]!.wrap({ constructor: 'a string' }));
    expect((await post('/v1/decisions', fine, 'application/json')).statusCode).toBe(200);
  });

  it('bytes that are not UTF-8 → 400 invalid_utf8', async () => {
    for (const { url, wrap } of ROUTES) {
      const [head, tail] = JSON.stringify(wrap('MARK')).split('MARK') as [string, string];
      const body = Buffer.concat([
        Buffer.from(head),
        Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
        Buffer.from(tail),
      ]);
      expectRefused(url, await post(url, body, 'application/json'), 400, 'invalid_utf8');
      // An overlong encoding of '"' and a UTF-16 BOM are not UTF-8 either.
      const overlong = Buffer.concat([Buffer.from(head), Buffer.from([0xc0, 0xa2]), Buffer.from(tail)]);
      expectRefused(url, await post(url, overlong, 'application/json'), 400, 'invalid_utf8');
      const utf16 = Buffer.concat([
        Buffer.from([0xff, 0xfe]),
        Buffer.from(JSON.stringify(wrap('x')), 'utf16le'),
      ]);
      expectRefused(url, await post(url, utf16, 'application/json'), 400, 'invalid_utf8');
    }
  });

  it('a UTF-8 BOM, charset=utf-8 and +json types are accepted', async () => {
    const body = JSON.stringify(ROUTES[0]!.wrap('x'));
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]);
    for (const [payload, type] of [
      [bom, 'application/json'],
      [body, 'application/json; charset=utf-8'],
      [body, 'application/json;charset="UTF-8"'],
      [body, 'application/vnd.verdict+json'],
    ] as const) {
      const response = await post('/v1/decisions', payload, type);
      expect(response.statusCode, `${type}: ${response.body}`).toBe(200);
      expect(response.json().allow).toBe(true);
    }
  });

  it('a content type that is not JSON, or JSON in another charset → 415 unsupported_media_type (400 on AuthZEN)', async () => {
    for (const { url, wrap } of ROUTES) {
      const body = JSON.stringify(wrap('x'));
      for (const type of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/xml',
        'multipart/form-data; boundary=x',
        'application/json; charset=latin1',
        'application/json; charset=utf-16',
        'not a media type',
        undefined,
      ]) {
        // AuthZEN 1.0 answers 400 to a non-JSON content type (certification scenario, C-2-4-3).
        const status = url.startsWith('/access/') ? 400 : 415;
        expectRefused(url, await post(url, body, type), status, 'unsupported_media_type');
      }
    }
  });

  it('a body that is not a JSON object → 400 body_not_object', async () => {
    for (const { url } of ROUTES) {
      for (const body of ['[]', '[{"subject":{}}]', '"text"', '42', 'true', 'null']) {
        expectRefused(url, await post(url, body, 'application/json'), 400, 'body_not_object');
      }
    }
  });

  it('invalid or truncated JSON → 400 malformed_json; an empty body → 400 empty_body', async () => {
    for (const { url, wrap } of ROUTES) {
      const body = JSON.stringify(wrap('x'));
      for (const bad of [
        body.slice(0, -1),
        `${body}}`,
        "{'a':1}",
        '{"a":1,}',
        '{"a":NaN}',
        `${body} trailing`,
      ]) {
        expectRefused(url, await post(url, bad, 'application/json'), 400, 'malformed_json');
      }
      expectRefused(url, await post(url, '', 'application/json'), 400, 'empty_body');
    }
  });

  it('a string (or key) longer than 64 KiB → 400 string_too_long', async () => {
    const long = 'x'.repeat(DEFAULTS.jsonMaxStringLength + 1);
    for (const { url, wrap } of ROUTES) {
      expectRefused(
        url,
        await post(url, JSON.stringify(wrap(long)), 'application/json'),
        400,
        'string_too_long',
      );
      const longKey = JSON.stringify(wrap({ [long]: 1 }));
      expectRefused(url, await post(url, longKey, 'application/json'), 400, 'string_too_long');
    }
    // Exactly at the limit: accepted.
    const atLimit = JSON.stringify(ROUTES[0]!.wrap('x'.repeat(DEFAULTS.jsonMaxStringLength)));
    expect((await post('/v1/decisions', atLimit, 'application/json')).statusCode).toBe(200);
  });

  it('numbers beyond the safe integer range → 400 unsafe_number', async () => {
    for (const { url, wrap } of ROUTES) {
      // Raw text: JSON.stringify cannot write these numbers, so splice them in.
      const [head, tail] = JSON.stringify(wrap('MARK')).split('"MARK"') as [string, string];
      for (const n of [
        '9007199254740993',
        '-9007199254740993',
        '12345678901234567890',
        '1e400',
        '-1e400',
        '1e16',
      ]) {
        expectRefused(url, await post(url, `${head}${n}${tail}`, 'application/json'), 400, 'unsafe_number');
      }
    }
    // The largest safe integer and ordinary fractions are fine.
    const [head, tail] = JSON.stringify(ROUTES[0]!.wrap('MARK')).split('"MARK"') as [string, string];
    for (const n of ['9007199254740991', '-9007199254740991', '0.1', '1e-300', '-0']) {
      expect((await post('/v1/decisions', `${head}[${n}]${tail}`, 'application/json')).statusCode).toBe(200);
    }
  });

  it('NUL or an unpaired surrogate in a string → 400 invalid_string (Postgres jsonb refuses both)', async () => {
    for (const { url, wrap } of ROUTES) {
      const [head, tail] = JSON.stringify(wrap('MARK')).split('MARK') as [string, string];
      for (const escaped of ['\\u0000', 'a\\ud800', '\\udc00b', '\\ud800\\ud800']) {
        expectRefused(
          url,
          await post(url, `${head}${escaped}${tail}`, 'application/json'),
          400,
          'invalid_string',
        );
      }
    }
    // A well-formed escaped pair is an ordinary character.
    const [head, tail] = JSON.stringify(ROUTES[0]!.wrap('MARK')).split('MARK') as [string, string];
    expect((await post('/v1/decisions', `${head}\\ud83d\\ude00${tail}`, 'application/json')).statusCode).toBe(
      200,
    );
  });

  it('content-length that does not match the body → 400, never 5xx', async () => {
    const response = await fixture.inject({
      method: 'POST',
      url: '/v1/decisions',
      payload: JSON.stringify(allowed),
      headers: { 'content-type': 'application/json', 'content-length': '5' },
    });
    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    expect(response.statusCode).toBeLessThan(500);
    expect(fixture.recorder.records).toHaveLength(0);
  });
});

describe('GET /v1/data/* input parameter gets the same protections', () => {
  const get = (input: string) =>
    fixture.inject({ method: 'GET', url: `/v1/data/verdict/echo?input=${encodeURIComponent(input)}` });

  it.each([
    ['too_deep', JSON.stringify(nest(65))],
    ['too_many_keys', JSON.stringify(Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [i, 0])))],
    ['string_too_long', JSON.stringify('y'.repeat(DEFAULTS.jsonMaxStringLength + 1))],
    ['unsafe_number', '{"n":9007199254740993}'],
    ['unsafe_number', '123456789012345678901234567890'],
    ['forbidden_key', '{"a":{"__proto__":{"polluted":true}}}'],
    ['forbidden_key', '{"constructor":{"prototype":{"polluted":true}}}'],
    ['invalid_string', '"\\u0000"'],
    ['malformed_json', '{"a":'],
  ])('%s', async (code, input) => {
    const response = await get(input);
    expectRefused('/v1/data/', response, 400, code);
    expect(response.json().code).toBe('invalid_parameter');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('percent-encoded bytes that are not UTF-8 are refused, never decoded into a decision', async () => {
    const response = await fixture.inject({
      method: 'GET',
      url: '/v1/data/verdict/echo?input=%22%FF%22',
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(fixture.recorder.records).toHaveLength(0);
  });
});
