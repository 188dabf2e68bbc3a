/**
 * The committed default bundle (policies/bundle/bundle.tar.gz) evaluates in the npm wasm SDK as the
 * control library intends: sample envelopes get the expected allow/deny and controls, the mask
 * returns pointers, and the seeded generator covers every control both ways. When the OPA CLI is on
 * PATH (npm test arranges it), the wasm results are also compared with OPA's own evaluator on the
 * Rego sources.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type LoadedPolicy, loadPolicy } from '@open-policy-agent/opa-wasm';
import { Parser, type ReadEntry } from 'tar';
import { beforeAll, describe, expect, it } from 'vitest';
import { VERDICT_BUILTINS } from '../../src/engine/builtins.ts';
import {
  type Envelope,
  generateEnvelopes,
  sampleEnvelopes,
  sampleExpectations,
} from '../support/envelopes.ts';

const root = path.resolve(import.meta.dirname, '../..');

interface Result {
  allow: boolean;
  violations: { control: string; message: string; severity: string }[];
  obligations: { type: string; [k: string]: unknown }[];
  exceptions: string[];
}

const CONTROLS = [
  'TOOL-001',
  'TOOL-002',
  'TOOL-003',
  'TOOL-004',
  'TOOL-005',
  'TOOL-006',
  'TOOL-007',
  'REL-001',
  'REL-002',
  'REL-003',
  'REL-004',
  'REL-005',
  'REL-006',
  'REL-007',
  'DATA-001',
  'DATA-002',
  'DATA-003',
  'DATA-004',
];

function unpack(file: string): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => entries.set(`/${entry.path.replace(/^\.?\//, '')}`, Buffer.concat(chunks)));
    },
  });
  parser.end(gunzipSync(readFileSync(file)));
  return entries;
}

let policy: LoadedPolicy;
let manifest: { revision: string; roots: string[] };

function decide(input: unknown, entrypoint = 'verdict/decision'): Result {
  const rs = policy.evaluate(input, entrypoint) as { result: Result }[];
  expect(rs).toHaveLength(1);
  return rs[0].result;
}

const controlsOf = (r: Result) => [...new Set(r.violations.map((v) => v.control))].sort();

beforeAll(async () => {
  const files = unpack(path.join(root, 'policies/bundle/bundle.tar.gz'));
  // opa build also ships the Rego sources (under /policies/) next to the compiled module.
  const names = [...files.keys()].sort();
  expect(names.filter((n) => !/^\/policies\/.*\.rego$/.test(n))).toEqual([
    '/.manifest',
    '/data.json',
    '/policy.wasm',
  ]);
  expect(names.some((n) => n.endsWith('_test.rego'))).toBe(false);
  manifest = JSON.parse(files.get('/.manifest')!.toString('utf8'));
  policy = await loadPolicy(
    new Uint8Array(files.get('/policy.wasm')!),
    { initial: 5, maximum: 2048 },
    VERDICT_BUILTINS,
  );
  policy.setData(JSON.parse(files.get('/data.json')!.toString('utf8')));
});

describe('default policy bundle', () => {
  it('has a source-derived revision, its roots and every entrypoint', () => {
    expect(manifest.revision).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(manifest.roots).toEqual(['verdict', 'verdict_data', 'system/log', 'authzen']);
    expect(Object.keys(policy.entrypoints).sort()).toEqual([
      'system/log/mask',
      'verdict/allow',
      'verdict/data/decision',
      'verdict/decision',
      'verdict/release/decision',
      'verdict/tool/decision',
    ]);
  });

  for (const [name, envelope] of Object.entries(sampleEnvelopes)) {
    const expected = sampleExpectations[name as keyof typeof sampleEnvelopes];
    it(`${name}: ${expected.length === 0 ? 'allow' : `deny ${expected.join(', ')}`}`, () => {
      const r = decide(envelope);
      expect(r.allow).toBe(expected.length === 0);
      expect(controlsOf(r)).toEqual(expected);
      expect(r.exceptions).toEqual([]);
      const allow = policy.evaluate(envelope, 'verdict/allow') as { result: boolean }[];
      expect(allow[0].result).toBe(r.allow);
    });
  }

  it('the per-domain entrypoints return the same result as the router for their domain', () => {
    expect(decide(sampleEnvelopes.toolCallDenied, 'verdict/tool/decision')).toEqual(
      decide(sampleEnvelopes.toolCallDenied),
    );
    expect(decide(sampleEnvelopes.releaseDenied, 'verdict/release/decision')).toEqual(
      decide(sampleEnvelopes.releaseDenied),
    );
    expect(decide(sampleEnvelopes.dataReadAllowed, 'verdict/data/decision')).toEqual(
      decide(sampleEnvelopes.dataReadAllowed),
    );
    expect(controlsOf(decide(sampleEnvelopes.releaseAllowed, 'verdict/tool/decision'))).toEqual([
      'DEFAULT-DENY',
    ]);
  });

  it('a denied tool call carries a human_approval obligation', () => {
    const r = decide(sampleEnvelopes.toolCallDenied);
    expect(r.obligations).toEqual([
      {
        type: 'human_approval',
        control: 'TOOL-002',
        reason: 'side-effecting tool call after untrusted content in the session',
      },
    ]);
  });

  it('unknown actions and non-object inputs are denied with DEFAULT-DENY', () => {
    for (const input of [
      { ...sampleEnvelopes.toolCallAllowed, action: { name: 'model.train' } },
      {},
      [1, 2],
      'tool.call',
      undefined,
    ]) {
      const r = decide(input);
      expect(r.allow).toBe(false);
      expect(r.violations.map((v) => v.control)).toContain('DEFAULT-DENY');
    }
  });

  it('system/log/mask returns JSON pointers for secrets and personal data', () => {
    const input = {
      ...sampleEnvelopes.toolCallDenied,
      resource: {
        type: 'tool',
        id: 'http_get',
        properties: { arguments: { url: 'https://x', api_key: 'sk' } },
      },
    };
    const rs = policy.evaluate({ decision_id: 'd1', input, result: {} }, 'system/log/mask') as {
      result: string[];
    }[];
    expect(rs[0].result).toEqual([
      '/input/context/user/email',
      '/input/resource/properties/arguments/api_key',
    ]);
  });
});

describe('generateEnvelopes', () => {
  const envelopes = generateEnvelopes(800, 42);

  it('is deterministic per seed', () => {
    expect(generateEnvelopes(50, 7)).toEqual(generateEnvelopes(50, 7));
    expect(generateEnvelopes(50, 7)).not.toEqual(generateEnvelopes(50, 8));
    expect(envelopes.slice(0, 50)).toEqual(generateEnvelopes(50, 42));
  });

  it('produces envelopes in the DESIGN.md shape', () => {
    for (const e of envelopes) {
      expect(
        Object.keys(e)
          // `grants` is what the server attaches (issue 13), like caller and now.
          .filter((k) => k !== 'extra' && k !== 'grants')
          .sort(),
      ).toEqual(['action', 'caller', 'context', 'now', 'resource', 'subject']);
      expect(typeof e.caller.sub).toBe('string');
      expect(Array.isArray(e.caller.scopes)).toBe(true);
      expect(typeof e.now).toBe('string');
    }
  });

  it('hits allow and deny across domains and every control', () => {
    const results = envelopes.map((e) => ({ e, r: decide(e) }));
    const denied = new Set(results.flatMap(({ r }) => r.violations.map((v) => v.control)));
    for (const control of [...CONTROLS, 'DEFAULT-DENY', 'INPUT-001'])
      expect(denied, control).toContain(control);

    const allowed = results.filter(({ r }) => r.allow).map(({ e }) => e);
    const share = allowed.length / envelopes.length;
    expect(share).toBeGreaterThan(0.25);
    expect(share).toBeLessThan(0.75);
    const p = (e: Envelope) => (e.resource.properties ?? {}) as Record<string, any>;
    const c = (e: Envelope) => e.context as Record<string, any>;
    // Allowed cases that went through each control's condition (its "allow" side).
    const allowPaths: Record<string, (e: Envelope) => boolean> = {
      'TOOL-001': (e) => e.action.name === 'tool.call',
      'TOOL-002': (e) => p(e).side_effects === true && c(e).session?.untrusted_content === true,
      'TOOL-003': (e) => p(e).risk === 'high',
      'TOOL-004': (e) => p(e).destination === 'external',
      'TOOL-005': (e) => ['shell', 'http_get', 'read_file'].includes(e.resource.id as string),
      'TOOL-006': (e) => typeof c(e).session?.tool_calls === 'number',
      'TOOL-007': (e) => typeof (e.subject.properties as any)?.on_behalf_of === 'string',
      'REL-001': (e) => e.action.name === 'release.deploy',
      'REL-002': (e) => p(e).risk_tier === 1,
      'REL-003': (e) => p(e).risk_tier === 1 && p(e).approvals?.length === 2,
      'REL-004': (e) => p(e).licenses?.length > 1,
      'REL-005': (e) => Array.isArray(p(e).lineage?.datasets),
      'REL-006': (e) => p(e).open_incidents?.length > 0,
      'REL-007': (e) => e.action.name === 'release.deploy' && c(e).environment === 'prod',
      'DATA-001': (e) => p(e).contains_pii === true,
      'DATA-002': (e) => p(e).classification === 'restricted',
      'DATA-003': (e) => Array.isArray(p(e).allowed_regions),
      'DATA-004': (e) => c(e).purpose === 'training' && p(e).customer_data === true,
    };
    for (const control of CONTROLS) {
      expect(allowed.some(allowPaths[control]), `allowed case through ${control}`).toBe(true);
    }
  });

  it('gives the same results in wasm as OPA gives on the Rego sources', () => {
    let opaAvailable = true;
    try {
      execFileSync('opa', ['version'], { stdio: 'ignore' });
    } catch {
      opaAvailable = false;
    }
    expect(opaAvailable, 'the OPA CLI must be on PATH (run through npm test)').toBe(true);
    const sample = [...envelopes.slice(0, 300), ...Object.values(sampleEnvelopes)];
    const out = execFileSync(
      'opa',
      [
        'eval',
        '--format',
        'json',
        '--stdin-input',
        '--data',
        'policies/',
        '--ignore',
        '*_test.rego',
        '--ignore',
        'bundle',
        '[r | some x in input; r := data.verdict.decision with input as x]',
      ],
      { cwd: root, input: JSON.stringify(sample), maxBuffer: 64 * 1024 * 1024 },
    ).toString('utf8');
    const expected = JSON.parse(out).result[0].expressions[0].value as Result[];
    expect(sample.map((e) => decide(e))).toEqual(expected);
  });
});
