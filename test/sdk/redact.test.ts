import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRedactions, type Obligation } from '../../packages/sdk/src/index.ts';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

const redact = (spans: { path: string; start: number; end: number; kind: string }[]): Obligation => ({
  type: 'redact',
  control: 'CONTENT-001',
  reason: 'test',
  spans,
});

describe('applyRedactions', () => {
  it('replaces spans of a string, leaving the original untouched', () => {
    const text = 'key AKIAQWERTYUIOPASDFGH end';
    expect(applyRedactions(text, [redact([{ path: '', start: 4, end: 24, kind: 'secret' }])])).toBe(
      'key [REDACTED:secret] end',
    );
    expect(applyRedactions(text, [{ type: 'human_approval', control: 'TOOL-002' }])).toBe(text);
  });

  it('uses JavaScript string indexes: emoji and CJK before a span', () => {
    const text = '👩‍👩‍👧 連絡先 dana@corp-mail.io です';
    const start = text.indexOf('dana');
    expect(applyRedactions(text, [redact([{ path: '', start, end: start + 17, kind: 'pii' }])])).toBe(
      '👩‍👩‍👧 連絡先 [REDACTED:pii] です',
    );
  });

  it('redacts parts by pointer, merges overlapping spans under the gravest kind', () => {
    const parts = [
      { role: 'assistant', text: 'abc SECRET' },
      { role: 'assistant', text: 'PART and more' },
    ];
    const out = applyRedactions(parts, [
      redact([
        { path: '/0/text', start: 4, end: 10, kind: 'secret' },
        { path: '/1/text', start: 0, end: 4, kind: 'secret' },
      ]),
      { ...redact([{ path: '/1/text', start: 2, end: 8, kind: 'pii' }]), control: 'CONTENT-002' },
    ]);
    expect(out).toEqual([
      { role: 'assistant', text: 'abc [REDACTED:secret]' },
      { role: 'assistant', text: '[REDACTED:secret] more' },
    ]);
    expect(parts[0]!.text).toBe('abc SECRET');
  });
});

describe('applyRedactions on a real decision', () => {
  let app: Awaited<ReturnType<typeof buildTestApp>>;
  beforeAll(async () => {
    app = await buildTestApp({ bundlePath: DEFAULT_BUNDLE });
  });
  afterAll(async () => app?.close());

  it('hides what the detectors found and nothing else', async () => {
    const content = [
      { role: 'assistant', text: '🙂 Your key: AKIAQWERTY' },
      { role: 'assistant', text: 'UIOPASDFGH; write to dana.kowalski@corp-mail.io 日本' },
    ];
    const res = await app.injectWithToken({
      method: 'POST',
      url: '/v1/decisions',
      payload: {
        subject: { type: 'agent', id: 'support-bot' },
        action: { name: 'model.response' },
        resource: { type: 'model', id: 'support-llm', properties: { content } },
        context: { destination: 'user' },
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    const decision = res.json();
    expect(decision.allow).toBe(true);
    expect(applyRedactions(content, decision.obligations)).toEqual([
      { role: 'assistant', text: '🙂 Your key: [REDACTED:secret]' },
      { role: 'assistant', text: '[REDACTED:secret]; write to [REDACTED:pii] 日本' },
    ]);
  });
});
