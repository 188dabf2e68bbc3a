import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { evaluateImpactPage, type ImpactRecord } from '../../src/bundles/impact-page.ts';
import { canonicalJson, inputDigest } from '../../src/decisions/canonical-json.ts';
import { parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

// One page on a candidate, in-process (the worker thread runs the same function): masked records
// are evaluated and flagged, search records skipped, flips carry the shadow report's controls.

const engine = PolicyEngine.fromBundle(parseBundle(readFileSync(DEFAULT_BUNDLE)));
const allowed = {
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'tool.call' },
  resource: { type: 'tool', id: 'search_kb', properties: {} },
  context: { session: { untrusted_content: false, tool_calls: 1 } },
  caller: { sub: 'svc', iss: null, clientId: null, scopes: ['decisions:evaluate'] },
  now: '2026-12-01T00:00:00Z',
  grants: { exceptions: [] },
};
const record = (
  id: string,
  input: unknown,
  allow: boolean,
  extra: Partial<ImpactRecord> = {},
): ImpactRecord => ({
  id,
  decided_at: '2026-12-01T00:00:00.000000Z',
  surface: 'native',
  entrypoint: 'verdict/decision',
  allow,
  violated_controls: [],
  input,
  input_sha256: inputDigest(canonicalJson(input)),
  ...extra,
});

describe('evaluateImpactPage', () => {
  it('compares with what was recorded and names the controls of each flip', () => {
    const offList = { ...allowed, subject: { type: 'agent', id: 'code-agent' } };
    const page = evaluateImpactPage(engine, [
      record('same', allowed, true),
      record('a2d', offList, true),
      record('d2a', allowed, false, { violated_controls: ['TOOL-009'] }),
    ]);
    expect(page).toMatchObject({ read: 3, evaluated: 3, unchanged: 1, masked: 0, skipped: {}, errors: {} });
    expect(page.flips).toEqual([
      { id: 'a2d', direction: 'allow_to_deny', controls: ['TOOL-001'], masked: false },
      { id: 'd2a', direction: 'deny_to_allow', controls: ['TOOL-009'], masked: false },
    ]);
  });

  it('evaluates a masked record on what was stored, counts it and flags its flip; never hides it', () => {
    // The digest is of an input the policy saw; the stored input differs (the mask's doing).
    const masked = record('m', allowed, false, { input_sha256: inputDigest('{"the":"unmasked input"}') });
    const page = evaluateImpactPage(engine, [masked]);
    expect(page).toMatchObject({ evaluated: 1, masked: 1 });
    expect(page.flips).toEqual([{ id: 'm', direction: 'deny_to_allow', controls: [], masked: true }]);
  });

  it('skips AuthZEN search records, and a candidate error is the fail-closed deny with its code', () => {
    const search = record('s', { search: 'resource', subject: { type: 'agent', id: 'x' } }, true, {
      surface: 'authzen',
    });
    const page = evaluateImpactPage(engine, [
      search,
      record('e', allowed, true, { entrypoint: 'verdict/nowhere' }),
    ]);
    expect(page.skipped).toEqual({ search_page: 1 });
    expect(page.evaluated).toBe(1);
    // Denied by the service after the policy allowed (an approval used up in a race): not guessed.
    const settled = record('u', allowed, false, { error: { code: 'approval_unusable' } });
    expect(evaluateImpactPage(engine, [settled]).skipped).toEqual({ approval_unusable: 1 });
    expect(Object.keys(page.errors)).toHaveLength(1);
    expect(Object.values(page.errors)[0]).toMatchObject({ count: 1, sampleIds: ['e'] });
    expect(page.flips).toEqual([
      { id: 'e', direction: 'allow_to_deny', controls: ['EVAL-ERROR'], masked: false },
    ]);
  });

  it('answers the same for a record stored as json text (migration 0015) as for its value', () => {
    const offList = { ...allowed, subject: { type: 'agent', id: 'code-agent' } };
    const search = { search: 'resource', subject: { type: 'agent', id: 'x' } };
    const values = [
      record('same', allowed, true),
      record('a2d', offList, true),
      record('d2a', allowed, false, { violated_controls: ['TOOL-009'] }),
      record('m', allowed, false, { input_sha256: inputDigest('{"the":"unmasked input"}') }),
      record('s', search, true, { surface: 'authzen' }),
    ];
    const asText = (r: ImpactRecord, text: string): ImpactRecord => ({ ...r, input: null, input_text: text });
    const canonical = values.map((r) => asText(r, canonicalJson(r.input)!));
    // Not the canonical form (keys out of order, spaces): the digest differs, so it is parsed and
    // made canonical — still unmasked where the value is.
    const reversed = (v: unknown) => Object.fromEntries(Object.entries(v as object).reverse());
    const loose = values.map((r) => asText(r, JSON.stringify(reversed(r.input), null, 1)));
    const expected = evaluateImpactPage(engine, values);
    expect(expected).toMatchObject({ evaluated: 4, masked: 1, skipped: { search_page: 1 } });
    expect(evaluateImpactPage(engine, canonical)).toEqual(expected);
    expect(evaluateImpactPage(engine, loose)).toEqual(expected);
  });
});
