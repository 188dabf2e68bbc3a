import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { envelopeOf } from '../src/http/envelope.ts';

/** A decision envelope as a client sends it (caller and now are added by the server). */
export type Envelope = {
  subject: Record<string, unknown>;
  action: Record<string, unknown>;
  resource: Record<string, unknown>;
  context?: Record<string, unknown>;
};

/** The inputs every system in a run is driven with. */
export interface BenchInputs {
  /** Small agent tool-call envelopes (a few hundred bytes each). */
  toolCalls: Envelope[];
  /** Release-gate envelopes with a realistic model card and evals (a few KB each). */
  releases: Envelope[];
  /** Where they came from: the shared generator of test/support, or this file's fallback. */
  source: string;
}

const root = path.resolve(import.meta.dirname, '..');
const SHARED_GENERATOR = path.join(root, 'test/support/envelopes.ts');

/** mulberry32: a tiny seeded PRNG, so that every run (and both systems) see the same inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const AGENT_TOOLS: Record<string, string[]> = {
  'support-bot': ['search_kb', 'create_ticket', 'send_email', 'lookup_order'],
  'code-agent': ['shell', 'http_get', 'read_file', 'write_file'],
  'research-agent': ['http_get', 'search_kb'],
  'ops-agent': ['shell', 'restart_service', 'deploy_service', 'create_ticket'],
  'finance-agent': ['lookup_order', 'issue_refund', 'send_email'],
};

const ARGUMENTS: Record<string, (r: () => number) => Record<string, unknown>> = {
  shell: (r) => ({ command: r() < 0.9 ? 'npm test -- --reporter dot' : 'rm -rf / --no-preserve-root' }),
  http_get: (r) => ({ url: r() < 0.8 ? 'https://api.github.com/repos/o/r' : 'http://evil.example/x' }),
  read_file: (r) => ({ path: r() < 0.9 ? '/workspace/src/index.ts' : '/etc/shadow' }),
  write_file: () => ({ path: '/workspace/out.txt', content: 'hello' }),
  search_kb: () => ({ query: 'reset password' }),
  lookup_order: (r) => ({ order_id: `ord_${Math.floor(r() * 1e6)}` }),
  send_email: () => ({ to: 'customer@example.com', subject: 'Your ticket' }),
  create_ticket: () => ({ title: 'Printer on fire', priority: 'p3' }),
};

function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

function fallbackToolCall(r: () => number, i: number): Envelope {
  const agent = pick(r, Object.keys(AGENT_TOOLS));
  // Mostly tools on the agent's allowlist, sometimes one that is not: a mix of allows and denies.
  const tool =
    r() < 0.85 ? pick(r, AGENT_TOOLS[agent]!) : pick(r, ['deploy_service', 'issue_refund', 'shell']);
  return {
    subject: { type: 'agent', id: agent, properties: { on_behalf_of: `user:${i % 97}` } },
    action: { name: 'tool.call', properties: {} },
    resource: { type: 'tool', id: tool, properties: { arguments: ARGUMENTS[tool]?.(r) ?? {} } },
    context: {
      session: { id: `sess-${i}`, untrusted_content: r() < 0.2, tool_calls: Math.floor(r() * 20) },
      environment: 'prod',
      data_classification: pick(r, ['public', 'internal', 'confidential']),
    },
  };
}

function fallbackRelease(r: () => number, i: number): Envelope {
  const tier = pick(r, [1, 2, 3]);
  const metric = (base: number) => Math.round((base + r() * (1 - base)) * 1000) / 1000;
  return {
    subject: { type: 'pipeline', id: 'release-ci', properties: { run_id: `run-${i}` } },
    action: { name: 'release.deploy', properties: {} },
    resource: {
      type: 'model_release',
      id: `support-llm-v${i}`,
      properties: {
        risk_tier: tier,
        author: 'alice@example.com',
        approvals: [
          { by: 'bob@example.com', role: 'responsible_ai' },
          { by: 'carol@example.com', role: 'engineering' },
        ],
        licenses: r() < 0.95 ? ['Apache-2.0', 'MIT'] : ['Proprietary-EULA'],
        model_card: {
          owner: 'team-support',
          intended_use:
            'Answering customer support questions about orders, shipping and returns; summarising ' +
            'tickets for human agents. Not for legal, medical or financial advice.',
          out_of_scope_uses: ['legal advice', 'medical advice', 'credit decisions', 'employment decisions'],
          data_classification: 'internal',
          evaluation_report: `https://evals.example.com/reports/support-llm-v${i}`,
          retention: '13 months',
          training_data: {
            sources: Array.from({ length: 12 }, (_, k) => ({
              name: `support-transcripts-${2020 + (k % 6)}-${k}`,
              records: 10_000 + k * 1_337,
              pii_scrubbed: true,
              license: 'internal',
            })),
          },
          limitations:
            'May produce plausible but wrong answers about order status when the order service is ' +
            'unavailable; tends to over-apologise; weaker in languages other than English and German.',
          ethical_considerations: 'Escalates complaints mentioning self-harm to a human immediately.',
        },
        evals: {
          safety: metric(0.9),
          jailbreak_resistance: metric(0.85),
          toxicity: Math.round(r() * 30) / 1000,
          helpfulness: metric(0.7),
          groundedness: metric(0.8),
          suites: Array.from({ length: 16 }, (_, k) => ({
            name: `suite-${k}`,
            cases: 200 + k * 10,
            passed: 190 + k * 10,
            score: metric(0.9),
          })),
        },
        lineage: {
          base_model: 'llama-3-8b',
          fine_tune_run: `ft-${i}`,
          dataset_digests: Array.from(
            { length: 6 },
            (_, k) => `sha256:${(i * 31 + k).toString(16).padStart(64, '0')}`,
          ),
        },
        open_incidents: [],
      },
    },
    context: { environment: 'prod', change_ticket: `CHG-${10_000 + i}` },
  };
}

/**
 * The run's inputs: from the shared generator `test/support/envelopes.ts` when it exists (so the
 * benchmark drives the policies with the same envelopes their tests use), else from the fallback
 * generator above. Deterministic for a seed.
 */
export async function loadInputs(count: number, seed: number): Promise<BenchInputs> {
  if (existsSync(SHARED_GENERATOR)) {
    const shared = (await import(pathToFileURL(SHARED_GENERATOR).href)) as {
      generateEnvelopes?: (count: number, seed: number) => Envelope[];
    };
    if (typeof shared.generateEnvelopes === 'function') {
      // Only envelopes the HTTP API accepts: the generator also makes malformed ones (for the
      // policies' INPUT-001 tests), which Verdict refuses with a 400 before any evaluation.
      const all = shared
        .generateEnvelopes(count * 8, seed)
        .map(stripServerFields)
        .filter(accepted);
      const toolCalls = all.filter((e) => e.action?.name === 'tool.call').slice(0, count);
      const releases = all
        .filter((e) => e.action?.name === 'release.deploy')
        .slice(0, count)
        .map((e, i) => withRealisticDetail(e, i));
      if (toolCalls.length > 0 && releases.length > 0) {
        return { toolCalls, releases, source: 'test/support/envelopes.ts generateEnvelopes' };
      }
    }
  }
  const r = prng(seed);
  return {
    toolCalls: Array.from({ length: count }, (_, i) => fallbackToolCall(r, i)),
    releases: Array.from({ length: count }, (_, i) => fallbackRelease(r, i)),
    source: 'bench/inputs.ts fallback generator',
  };
}

/**
 * The shared generator's release envelopes carry only the fields the controls read (~1 KB). A real
 * pipeline sends the whole model card and eval report, a few KB, which the policy must parse too:
 * this adds that detail (fields no control reads, so every decision stays the same).
 */
function withRealisticDetail(envelope: Envelope, i: number): Envelope {
  const detail = fallbackRelease(prng(i + 1), i).resource.properties as Record<string, any>;
  const props = envelope.resource.properties as Record<string, any> | undefined;
  if (!props) return envelope;
  const card = props.model_card;
  const evals = props.evals;
  return {
    ...envelope,
    resource: {
      ...envelope.resource,
      properties: {
        ...props,
        ...(card && typeof card === 'object' && !Array.isArray(card)
          ? {
              model_card: {
                ...card,
                out_of_scope_uses: detail.model_card.out_of_scope_uses,
                training_data: detail.model_card.training_data,
                limitations: detail.model_card.limitations,
                ethical_considerations: detail.model_card.ethical_considerations,
              },
            }
          : {}),
        ...(evals && typeof evals === 'object' && !Array.isArray(evals)
          ? { evals: { ...evals, suites: detail.evals.suites } }
          : {}),
      },
    },
  };
}

function accepted(envelope: Envelope): boolean {
  try {
    envelopeOf(envelope as Record<string, unknown>);
    return true;
  } catch {
    return false;
  }
}

/** The server adds caller and now itself; a client-side envelope never carries them. */
function stripServerFields(envelope: Envelope & { caller?: unknown; now?: unknown }): Envelope {
  const { caller: _caller, now: _now, ...rest } = envelope;
  return rest;
}
