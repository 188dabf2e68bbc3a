import type { BenchInputs, Envelope } from './inputs.ts';

/** One HTTP request the load generator sends (it cycles through a scenario's list). */
export interface RequestSpec {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** What both systems are asked, and how many decisions one request of each carries. */
export interface Scenario {
  name: string;
  title: string;
  verdict: { requests: RequestSpec[]; decisionsPerRequest: number };
  opa: { requests: RequestSpec[]; decisionsPerRequest: number };
}

/** What the server would attach to the envelope; OPA has no auth, so its input carries it verbatim. */
export interface ServerFields {
  caller: Record<string, unknown>;
  now: string;
}

export const BATCH_SIZE = 20;
const JSON_HEADERS = { 'content-type': 'application/json' };

function post(path: string, body: unknown, headers: Record<string, string>): RequestSpec {
  return { method: 'POST', path, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/** The policy input OPA gets: the envelope plus what Verdict adds server-side (caller, now). */
function opaInput(envelope: Envelope, server: ServerFields): unknown {
  return { input: { ...envelope, caller: server.caller, now: server.now } };
}

/**
 * The four scenarios of the benchmark. Verdict gets a bearer token (its routes need one); OPA runs
 * without authentication, as `opa run --server` does by default.
 */
export function buildScenarios(inputs: BenchInputs, server: ServerFields, token: string | null): Scenario[] {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const opaDecision = (envelope: Envelope) =>
    post('/v1/data/verdict/decision', opaInput(envelope, server), {});
  const batches: RequestSpec[] = [];
  for (let i = 0; i + BATCH_SIZE <= inputs.toolCalls.length; i += BATCH_SIZE) {
    batches.push(post('/v1/decisions/batch', { items: inputs.toolCalls.slice(i, i + BATCH_SIZE) }, auth));
  }
  return [
    {
      name: 'tool-call',
      title: 'small tool-call decision',
      verdict: {
        requests: inputs.toolCalls.map((e) => post('/v1/decisions', e, auth)),
        decisionsPerRequest: 1,
      },
      opa: { requests: inputs.toolCalls.map(opaDecision), decisionsPerRequest: 1 },
    },
    {
      name: 'release-gate',
      title: 'release gate (model card + evals, a few KB)',
      verdict: {
        requests: inputs.releases.map((e) => post('/v1/decisions', e, auth)),
        decisionsPerRequest: 1,
      },
      opa: { requests: inputs.releases.map(opaDecision), decisionsPerRequest: 1 },
    },
    {
      name: 'batch-20',
      title: `batch of ${BATCH_SIZE} tool calls (Verdict: one batch request; OPA: ${BATCH_SIZE} calls)`,
      verdict: { requests: batches, decisionsPerRequest: BATCH_SIZE },
      opa: { requests: inputs.toolCalls.map(opaDecision), decisionsPerRequest: 1 },
    },
    {
      name: 'opa-data',
      title: 'OPA-compatible POST /v1/data/verdict/decision (same request to both)',
      verdict: {
        requests: inputs.toolCalls.map((e) => post('/v1/data/verdict/decision', opaInput(e, server), auth)),
        decisionsPerRequest: 1,
      },
      opa: { requests: inputs.toolCalls.map(opaDecision), decisionsPerRequest: 1 },
    },
  ];
}
