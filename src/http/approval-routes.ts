import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { hasScope } from '../auth/caller.ts';
import type { Caller } from '../decisions/types.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import type { ApprovalStore, StoredApproval } from '../grants/approval-store.ts';
import { grantSettings } from '../grants/control-catalog.ts';
import { ProblemError } from './problem.ts';
import {
  ApprovalDecisionRequestV1,
  ApprovalListQueryV1,
  ApprovalListV1,
  ApprovalV1,
  GrantIdParamsV1,
  ProblemResponses,
} from './wire/index.ts';

/** What the approval routes need (built by the composition root). */
export interface ApprovalDeps {
  store: ApprovalStore;
  policy: ActivePolicy;
  /** Told of each grant (the request → grant latency metric). */
  onGranted?: (approval: StoredApproval) => void;
}

/** The approver of a grant or deny: a human principal, checked by the store against the request. */
function approverOf(caller: Caller) {
  return { sub: caller.sub, human: caller.principalType === 'human' };
}

/**
 * An approval as `caller` may read it: the arguments only with `approvals:grant` (an approver must
 * see what they approve); an agent runtime polling its request's status with `decisions:evaluate`
 * gets everything else, since another agent's arguments are none of its business.
 */
function readableBy(caller: Caller, approval: StoredApproval) {
  if (hasScope(caller, 'approvals:grant')) return approval;
  const { arguments: _withheld, ...rest } = approval;
  return rest;
}

/**
 * Human approval of agent actions. Granting and denying need `approvals:grant` and a human principal
 * (the token's `principal_type: "human"`) other than the agent and, unless the bundle allows it,
 * other than the user the agent acts for. The status route is what a deny's `status_url` names:
 * the agent runtime (decisions:evaluate) polls it. A refused grant or deny is the store's GrantError,
 * answered by the app's one error mapper.
 */
export const approvalRoutes: FastifyPluginAsyncTypebox<ApprovalDeps> = async (app, opts) => {
  const { store, policy } = opts;

  app.get(
    '/v1/approvals',
    {
      config: { scope: 'approvals:grant' },
      schema: {
        summary: 'List approval requests',
        tags: ['approvals'],
        querystring: ApprovalListQueryV1,
        response: { 200: ApprovalListV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const { state, limit } = request.query;
      return {
        approvals: await store.list({ state, limit: limit === undefined ? undefined : Number(limit) }),
      };
    },
  );

  app.get(
    '/v1/approvals/:id',
    {
      config: { scope: ['approvals:grant', 'decisions:evaluate'] },
      schema: {
        summary:
          'One approval request and its history (the status_url of a deny); its arguments need approvals:grant',
        tags: ['approvals'],
        params: GrantIdParamsV1,
        response: { 200: ApprovalV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      const found = await store.get(id);
      if (!found) throw new ProblemError(404, 'approval_not_found', `no approval ${id}`);
      return { ...readableBy(request.caller, found), history: await store.history(id) };
    },
  );

  /** Grant (told to onGranted) or deny, under the active bundle's grant settings. */
  const settle = {
    approve: async (...args: Parameters<ApprovalStore['grant']>) => {
      const granted = await store.grant(...args);
      opts.onGranted?.(granted);
      return granted;
    },
    deny: (...args: Parameters<ApprovalStore['deny']>) => store.deny(...args),
  };
  for (const [verb, summary] of [
    ['approve', 'Grant an approval request (a human, not the agent)'],
    ['deny', 'Deny an approval request'],
  ] as const) {
    app.post(
      `/v1/approvals/:id/${verb}`,
      {
        config: { scope: 'approvals:grant' },
        schema: {
          summary,
          tags: ['approvals'],
          params: GrantIdParamsV1,
          body: ApprovalDecisionRequestV1,
          response: { 200: ApprovalV1, ...ProblemResponses },
        },
      },
      async (request) => {
        const reason = request.body.reason ?? null;
        const settings = grantSettings(policy.current());
        return settle[verb](request.params.id, approverOf(request.caller), reason, settings);
      },
    );
  }
};
