import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/decisions/canonical-json.ts';
import { policyReadsText, scanContentInput } from '../../src/decisions/content.ts';
import { ContentScanner } from '../../src/guardrails/scan.ts';

const scanner = new ContentScanner();
const AWS_KEY = 'AKIAQWERTYUIOPASDFGH';
const EMAIL = 'dana.kowalski@corp-mail.io';

const envelope = (resource: unknown, extra: Record<string, unknown> = {}) => ({
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'model.response' },
  resource,
  context: { destination: 'user' },
  caller: { sub: 'svc', scopes: ['decisions:evaluate'] },
  now: '2026-12-07T00:00:00.000Z',
  ...extra,
});
const model = (content: unknown) => ({
  type: 'model',
  id: 'llm',
  properties: { content, zeta: 1, alpha: 'a' },
});

/** The content as the mask sees it: each text emptied, everything else kept. */
function emptied(content: unknown): unknown {
  if (typeof content === 'string') return '';
  if (!Array.isArray(content)) return content;
  return content.map((p) =>
    typeof p === 'object' && p !== null && typeof p.text === 'string' ? { ...p, text: '' } : p,
  );
}

const cases: [string, Record<string, unknown>][] = [
  [
    'a string with findings, escapes and non-ASCII',
    envelope(model(`k ${AWS_KEY} "q" \\ \n\t\u0001 🙂 返金 ${EMAIL}`)),
  ],
  [
    'parts with findings, roles and other keys',
    envelope(
      model([
        { role: 'assistant', text: `The key is ${AWS_KEY.slice(0, 9)}` },
        { text: `${AWS_KEY.slice(9)} and ${EMAIL}`, meta: { b: 2, a: [1, 'x'] } },
      ]),
    ),
  ],
  ['a string without findings', envelope(model('nothing here'))],
  ['malformed content (a number)', envelope(model(42))],
  ['malformed content (an object)', envelope(model({ text: AWS_KEY }))],
  ['parts with a malformed part', envelope(model([{ text: AWS_KEY }, 'bare', null]))],
  ['no content', envelope({ type: 'model', id: 'llm', properties: { other: AWS_KEY } })],
  ['no properties', envelope({ type: 'model', id: 'llm' })],
  ['a resource that is not an object', envelope('llm')],
  [
    'a client string that looks like the internal marker',
    envelope(model(`key ${AWS_KEY}`), { note: 'verdict-content-00000000000000000000000000000000' }),
  ],
  ['content equal to another value of the input', envelope(model('same text'), { note: 'same text' })],
];

describe('scanContentInput: the texts it makes', () => {
  it.each(cases)('%s: the input, the logged input and the mask event are their canonical JSON', (_, env) => {
    const scanned = scanContentInput(env, scanner);
    expect(scanned.inputJson).toBe(canonicalJson(scanned.input));
    expect(scanned.loggedJson).toBe(canonicalJson(scanned.logged));
    const resource = scanned.input.resource as Record<string, unknown> | undefined;
    const properties = (typeof resource === 'object' && resource?.properties) as
      | Record<string, unknown>
      | false;
    const masked =
      properties && 'content' in properties
        ? {
            ...scanned.input,
            resource: { ...resource, properties: { ...properties, content: emptied(properties.content) } },
          }
        : scanned.input;
    expect(scanned.maskEventJson).toBe(canonicalJson({ input: masked }));
  });

  it.each(cases)(
    '%s, the policy not reading the text: the engine reads the input with each text emptied, the log the redacted text',
    (_, env) => {
      const reading = scanContentInput(env, scanner);
      const scanned = scanContentInput(env, scanner, { policyReadsText: false });
      expect(scanned.input).toEqual(reading.input);
      expect(scanned.loggedJson).toBe(reading.loggedJson);
      expect(scanned.loggedJson).toBe(canonicalJson(scanned.logged));
      expect(scanned.maskEventJson).toBe(reading.maskEventJson);
      expect(`{"input":${scanned.inputJson}}`).toBe(scanned.maskEventJson);
    },
  );

  it('withholds every text from the policy, keeps structure, roles and findings', () => {
    const parts = [
      { role: 'assistant', text: `key ${AWS_KEY}. ` },
      { role: 'user', text: 'no finding here' },
    ];
    const scanned = scanContentInput(envelope(model(parts)), scanner, { policyReadsText: false });
    const seen = JSON.parse(scanned.inputJson);
    expect(seen.resource.properties.content).toEqual([
      { role: 'assistant', text: '' },
      { role: 'user', text: '' },
    ]);
    expect(seen.findings).toEqual(scanned.input.findings);
    expect(seen.findings).toHaveLength(1);
    expect(seen.content_sha256).toBe(scanned.input.content_sha256);
    // Without a finding the log keeps the text as sent; the policy still does not see it.
    const clean = scanContentInput(envelope(model('nothing to find')), scanner, { policyReadsText: false });
    expect(JSON.parse(clean.inputJson).resource.properties.content).toBe('');
    expect(JSON.parse(clean.loggedJson).resource.properties.content).toBe('nothing to find');
  });

  it('a string with findings, the text withheld: the digest is of the text as sent, the engine reads it emptied', () => {
    const text = `key ${AWS_KEY}, mail ${EMAIL}`;
    const scanned = scanContentInput(envelope(model(text)), scanner, { policyReadsText: false });
    expect(scanned.input.content_sha256).toBe(createHash('sha256').update(text, 'utf8').digest('hex'));
    const properties = (scanned.input.resource as { properties: Record<string, unknown> }).properties;
    expect(properties.content).toBe(text);
    const seen = {
      ...scanned.input,
      resource: { ...(scanned.input.resource as object), properties: { ...properties, content: '' } },
    };
    expect(scanned.inputJson).toBe(canonicalJson(seen));
    expect(JSON.parse(scanned.loggedJson).resource.properties.content).toBe(
      'key [REDACTED:secret], mail [REDACTED:pii]',
    );
  });

  it("reads the setting from the bundle's data: only an explicit false withholds the text", () => {
    expect(policyReadsText(undefined)).toBe(true);
    expect(policyReadsText({ verdict_data: { content: {} } })).toBe(true);
    expect(policyReadsText({ verdict_data: { content: { policy_reads_text: 'no' } } })).toBe(true);
    expect(policyReadsText({ verdict_data: { content: { policy_reads_text: false } } })).toBe(false);
  });

  it('redacts the logged content and keeps the findings and digest in all three', () => {
    const scanned = scanContentInput(envelope(model(`key ${AWS_KEY}, mail ${EMAIL}`)), scanner);
    const logged = JSON.parse(scanned.loggedJson);
    expect(logged.resource.properties.content).toBe('key [REDACTED:secret], mail [REDACTED:pii]');
    expect(logged.findings).toHaveLength(2);
    const event = JSON.parse(scanned.maskEventJson);
    expect(event.input.resource.properties.content).toBe('');
    expect(event.input.findings).toEqual(logged.findings);
    expect(event.input.content_sha256).toBe(logged.content_sha256);
  });
});
