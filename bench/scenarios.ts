import type { BenchInputs, Envelope } from './inputs.ts';

/** One HTTP request the load generator sends (it cycles through a scenario's list). */
export interface RequestSpec {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A system's requests for a scenario, and how many decisions one request carries. */
export interface ScenarioRequests {
  requests: RequestSpec[];
  decisionsPerRequest: number;
}

/** What every system is asked, and how many decisions one request of each carries. */
export interface Scenario {
  name: string;
  title: string;
  verdict: ScenarioRequests;
  opa: ScenarioRequests;
  /**
   * Cerbos's CheckResources requests, with the inputs each request decides (indexes into the
   * scenario's inputs, in the order of Cerbos's results); null where Cerbos has no equivalent
   * (the OPA data API).
   */
  cerbos: (ScenarioRequests & { inputIndexes: number[][] }) | null;
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
 * Cerbos's CheckResources entry for one envelope (bench/cerbos/policies read it): the principal is
 * the subject without its properties, which travel with the resource — a CheckResources request has
 * one principal, and the properties belong to the call (`on_behalf_of`). `grants` is what OPA's
 * input carries (the generator's `legacy_client_approvals` flag, under which a client-sent
 * `context.approval` counts); no envelope names a PDP-held approval.
 */
function cerbosEntry(envelope: Envelope, server: ServerFields) {
  return {
    principal: { id: envelope.subject.id, roles: [envelope.subject.type] },
    resource: {
      actions: [envelope.action.name],
      resource: {
        kind: envelope.resource.type,
        id: envelope.resource.id,
        attr: {
          subject: envelope.subject.properties ?? {},
          properties: envelope.resource.properties ?? {},
          context: envelope.context ?? {},
          now: server.now,
          // What Verdict's server attaches as input.grants here: nothing (no stored waivers or approvals).
          grants: {},
        },
      },
    },
  };
}

/** One CheckResources request deciding `envelopes` (all of the same principal). */
function cerbosCheck(envelopes: Envelope[], server: ServerFields): RequestSpec {
  const entries = envelopes.map((e) => cerbosEntry(e, server));
  return post(
    '/api/check/resources',
    { principal: entries[0]!.principal, resources: entries.map((e) => e.resource) },
    {},
  );
}

/**
 * Cerbos's native batch: one CheckResources request with BATCH_SIZE resources. A request has one
 * principal, so the tool calls are grouped by agent (id and type), in input order; an agent's
 * remainder below BATCH_SIZE is left out.
 */
function cerbosBatches(toolCalls: Envelope[], server: ServerFields) {
  const byPrincipal = new Map<string, number[]>();
  toolCalls.forEach((e, i) => {
    const key = JSON.stringify([e.subject.id, e.subject.type]);
    byPrincipal.set(key, [...(byPrincipal.get(key) ?? []), i]);
  });
  const inputIndexes: number[][] = [];
  for (const indexes of byPrincipal.values()) {
    for (let i = 0; i + BATCH_SIZE <= indexes.length; i += BATCH_SIZE)
      inputIndexes.push(indexes.slice(i, i + BATCH_SIZE));
  }
  return {
    requests: inputIndexes.map((batch) =>
      cerbosCheck(
        batch.map((i) => toolCalls[i]!),
        server,
      ),
    ),
    decisionsPerRequest: BATCH_SIZE,
    inputIndexes,
  };
}

/** One CheckResources request per envelope. */
function cerbosSingles(envelopes: Envelope[], server: ServerFields) {
  return {
    requests: envelopes.map((e) => cerbosCheck([e], server)),
    decisionsPerRequest: 1,
    inputIndexes: envelopes.map((_, i) => [i]),
  };
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
      cerbos: cerbosSingles(inputs.toolCalls, server),
    },
    {
      name: 'release-gate',
      title: 'release gate (model card + evals, a few KB)',
      verdict: {
        requests: inputs.releases.map((e) => post('/v1/decisions', e, auth)),
        decisionsPerRequest: 1,
      },
      opa: { requests: inputs.releases.map(opaDecision), decisionsPerRequest: 1 },
      cerbos: cerbosSingles(inputs.releases, server),
    },
    {
      name: 'batch-20',
      title: `batch of ${BATCH_SIZE} tool calls (Verdict, Cerbos: one batch request; OPA: ${BATCH_SIZE} calls)`,
      verdict: { requests: batches, decisionsPerRequest: BATCH_SIZE },
      opa: { requests: inputs.toolCalls.map(opaDecision), decisionsPerRequest: 1 },
      cerbos: cerbosBatches(inputs.toolCalls, server),
    },
    {
      name: 'opa-data',
      title: 'OPA-compatible POST /v1/data/verdict/decision (same request to both)',
      verdict: {
        requests: inputs.toolCalls.map((e) => post('/v1/data/verdict/decision', opaInput(e, server), auth)),
        decisionsPerRequest: 1,
      },
      opa: { requests: inputs.toolCalls.map(opaDecision), decisionsPerRequest: 1 },
      cerbos: null,
    },
  ];
}
