import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { loadBundleFile } from '../../src/bundles/active.ts';
import type { PolicyEngine } from '../../src/engine/engine.ts';
import { buildTestApp } from '../support/app.ts';
import { buildFixtureBundle, contractFixtureBundle } from '../support/bundle.ts';

let built: Awaited<ReturnType<typeof buildTestApp>>;
let recorder: MemoryRecorder;
let scenario: PolicyEngine;

beforeAll(async () => {
  const bundle = buildFixtureBundle('authzen-scenario', ['verdict/decision']);
  built = await buildTestApp({ bundlePath: bundle });
  recorder = built.recorder as MemoryRecorder;
  scenario = built.policy.current();
});
afterAll(async () => built?.app.close());
beforeEach(() => {
  recorder.records.length = 0;
  recorder.failWith = null;
  built.policy.activate(scenario);
});

const post = (url: string, payload: unknown) =>
  built.injectWithToken({ method: 'POST', url, payload: payload as object });
const subjects = {
  subject: { type: 'user' },
  action: { name: 'read' },
  resource: { type: 'record', id: 'record-1' },
};

describe('AuthZEN search: recording, page tokens', () => {
  it('one search is ONE decision record: the query and the ids returned, not one per candidate', async () => {
    const response = await post('/access/v1/search/subject', subjects);
    expect(response.statusCode).toBe(200);
    expect(recorder.records).toHaveLength(1);
    const [record] = recorder.records;
    expect(record).toMatchObject({
      surface: 'authzen',
      entrypoint: 'verdict/decision',
      allow: true,
      subjectType: 'user',
      subjectId: null,
      actionName: 'read',
      resourceId: 'record-1',
      result: { search: 'subject', results: ['alice', 'bob'], next_token: '' },
    });
    expect(record!.input).toMatchObject({ search: 'subject', subject: { type: 'user' } });
    expect(response.json().context.decision_id).toBe(record!.id);
  });

  it('a search that finds nothing is recorded as a deny', async () => {
    await post('/access/v1/search/action', {
      subject: { type: 'user', id: 'mallory' },
      resource: subjects.resource,
    });
    expect(recorder.records).toHaveLength(1);
    expect(recorder.records[0]).toMatchObject({ allow: false, result: { results: [] } });
  });

  it('pages are stable and complete while the revision is unchanged', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 5; page++) {
      const response = await post('/access/v1/search/action', {
        subject: { type: 'user', id: 'alice' },
        resource: { type: 'record', id: 'record-1' },
        page: { limit: 1, ...(token ? { token } : {}) },
      });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body.page.count).toBe(body.results.length);
      seen.push(...body.results.map((r: { name: string }) => r.name));
      token = body.page.next_token;
      if (token === '') break;
    }
    // alice may delete only softly, and an action search sends no action properties.
    expect(seen).toEqual(['read', 'write']);
    expect(token).toBe('');
    const all = await post('/access/v1/search/action', {
      subject: { type: 'user', id: 'alice' },
      resource: { type: 'record', id: 'record-1' },
    });
    expect(all.json().results.map((r: { name: string }) => r.name)).toEqual(seen);
  });

  it('a tampered token, a token of another query, or garbage is 400 invalid_page_token', async () => {
    const first = await post('/access/v1/search/subject', { ...subjects, page: { limit: 1 } });
    const token: string = first.json().page.next_token;
    expect(token).not.toBe('');
    const flipped = token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1);
    const [payload, tag] = token.split('.');
    const otherOffset = `${Buffer.from(Buffer.from(payload!, 'base64url').toString().replace(/\d+$/, '0')).toString('base64url')}.${tag}`;
    const cases = [
      { ...subjects, page: { token: flipped } },
      { ...subjects, page: { token: otherOffset } },
      { ...subjects, page: { token: 'not-a-token' } },
      { ...subjects, action: { name: 'write' }, page: { token } },
    ];
    for (const body of cases) {
      const response = await post('/access/v1/search/subject', body);
      expect(response.statusCode, JSON.stringify(body.page)).toBe(400);
      expect(response.json().code).toBe('invalid_page_token');
    }
    const badLimit = await post('/access/v1/search/subject', { ...subjects, page: { limit: 0 } });
    expect(badLimit.statusCode).toBe(400);
  });

  it('a token from an older revision is 400 stale_page_token', async () => {
    const first = await post('/access/v1/search/subject', { ...subjects, page: { limit: 1 } });
    const token: string = first.json().page.next_token;
    built.policy.activate(await loadBundleFile(contractFixtureBundle()));
    const response = await post('/access/v1/search/subject', { ...subjects, page: { token } });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('stale_page_token');
  });

  it('a bundle without a catalog gives empty results; an unrecordable search is 503 and answers nothing', async () => {
    built.policy.activate(await loadBundleFile(contractFixtureBundle()));
    const empty = await post('/access/v1/search/subject', subjects);
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toMatchObject({ results: [], page: { next_token: '' } });
    built.policy.activate(scenario);
    recorder.failWith = new Error('down');
    const unrecorded = await post('/access/v1/search/subject', subjects);
    expect(unrecorded.statusCode).toBe(503);
    expect(unrecorded.body).not.toContain('alice');
  });
});
