import { envelopeOf } from '../src/http/envelope.ts';
import { generateEnvelopes, mulberry32 } from '../test/support/envelopes.ts';

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
  /** Where they came from. */
  source: string;
}

function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

/** A release's model card and eval report in full: the detail a real pipeline sends (few KB). */
function releaseDetail(r: () => number, i: number): Envelope {
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
 * The run's inputs: from the shared generator `test/support/envelopes.ts`, so the benchmark drives
 * the policies with the same envelopes their tests use. Deterministic for a seed.
 */
export async function loadInputs(count: number, seed: number): Promise<BenchInputs> {
  // Only envelopes the HTTP API accepts: the generator also makes malformed ones (for the
  // policies' INPUT-001 tests), which Verdict refuses with a 400 before any evaluation.
  const all = generateEnvelopes(count * 8, seed)
    .map(stripServerFields)
    .filter(accepted);
  const toolCalls = all.filter((e) => e.action?.name === 'tool.call').slice(0, count);
  const releases = all
    .filter((e) => e.action?.name === 'release.deploy')
    .slice(0, count)
    .map((e, i) => withRealisticDetail(e, i));
  return { toolCalls, releases, source: 'test/support/envelopes.ts generateEnvelopes' };
}

/**
 * The shared generator's release envelopes carry only the fields the controls read (~1 KB). A real
 * pipeline sends the whole model card and eval report, a few KB, which the policy must parse too:
 * this adds that detail (fields no control reads, so every decision stays the same).
 */
function withRealisticDetail(envelope: Envelope, i: number): Envelope {
  const detail = releaseDetail(mulberry32(i + 1), i).resource.properties as Record<string, any>;
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

/**
 * The server adds caller, now and grants itself; a client-side envelope never carries them. (The
 * generator's `grants: {legacy_client_approvals: true}` stands for a server setting the policy tests
 * exercise; Verdict's native route drops a client-sent `grants`, so OPA and Cerbos must not get it
 * either, or they would allow what Verdict denies.)
 */
function stripServerFields(
  envelope: Envelope & { caller?: unknown; now?: unknown; grants?: unknown },
): Envelope {
  const { caller: _caller, now: _now, grants: _grants, ...rest } = envelope;
  return rest;
}
