import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ActivePolicy } from '../engine/engine.ts';
import type { ApprovalState, ApprovalStore, StoredApproval } from '../grants/approval-store.ts';
import { grantSettings } from '../grants/control-catalog.ts';
import { ProblemError } from './problem.ts';
import { ProblemV1 } from './schemas.ts';
import { GrantId, grantProblem } from './waiver-routes.ts';

/** What the approval routes need (built by the composition root). */
export interface ApprovalDeps {
  store: ApprovalStore;
  policy: ActivePolicy;
  /** Told of each grant (the request → grant latency metric). */
  onGranted?: (approval: StoredApproval) => void;
}

const ApprovalV1 = Type.Object({ id: Type.String(), state: Type.String() }, { additionalProperties: true });
const DecideV1 = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 4_000 })) },
  { additionalProperties: false },
);
const STATES = ['pending', 'granted', 'denied', 'expired'] as const;

/**
 * Human approval of agent actions. Granting and denying need `approvals:grant` and a human principal
 * (the token's `principal_type: "human"`) other than the agent and, unless the bundle allows it,
 * other than the user the agent acts for. The status route is what a deny's `status_url` names:
 * the agent runtime (decisions:evaluate) polls it.
 */
export const approvalRoutes: FastifyPluginAsyncTypebox<ApprovalDeps> = async (app, opts) => {
  const { store, policy } = opts;
  const params = { params: Type.Object({ id: GrantId }) };
  const responses = { '4xx': ProblemV1, '5xx': ProblemV1 };

  app.get(
    '/v1/approvals',
    {
      config: { scope: 'approvals:grant' },
      schema: {
        summary: 'List approval requests',
        tags: ['approvals'],
        querystring: Type.Object(
          {
            state: Type.Optional(Type.String({ enum: [...STATES] })),
            limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ approvals: Type.Array(ApprovalV1) }), ...responses },
      },
    },
    async (request) => {
      const { state, limit } = request.query;
      return {
        approvals: await store.list({
          state: state as ApprovalState | undefined,
          limit: limit === undefined ? undefined : Number(limit),
        }),
      };
    },
  );

  app.get(
    '/v1/approvals/:id',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'One approval request and its history (the status_url of a deny)',
        tags: ['approvals'],
        ...params,
        response: { 200: ApprovalV1, ...responses },
      },
    },
    async (request) => {
      const { id } = request.params;
      const found = await store.get(id);
      if (!found) throw new ProblemError(404, 'approval_not_found', `no approval ${id}`);
      return { ...found, history: await store.history(id) };
    },
  );

  for (const verb of ['approve', 'deny'] as const) {
    app.post(
      `/v1/approvals/:id/${verb}`,
      {
        config: { scope: 'approvals:grant' },
        schema: {
          summary:
            verb === 'approve'
              ? 'Grant an approval request (a human, not the agent)'
              : 'Deny an approval request',
          tags: ['approvals'],
          ...params,
          body: Type.Optional(DecideV1),
          response: { 200: ApprovalV1, ...responses },
        },
      },
      async (request) => {
        const { id } = request.params;
        const reason = request.body?.reason ?? null;
        const approver = { sub: request.caller.sub, human: request.caller.principalType === 'human' };
        const settings = grantSettings(policy.current());
        try {
          if (verb === 'deny') return await store.deny(id, approver, reason, settings);
          const granted = await store.grant(id, approver, reason, settings);
          opts.onGranted?.(granted);
          return granted;
        } catch (err) {
          throw grantProblem(err);
        }
      },
    );
  }
};
