import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StoredDecision } from '../audit/queries.ts';
import type { StoredApproval } from '../grants/approval-store.ts';
import { grantSettings } from '../grants/control-catalog.ts';
import { isObject } from '../json/values.ts';
import { can, personOf } from './console-access.ts';
import type { ConsoleDeps } from './console-plugin.ts';
import { historyTable, json, list, timeLeft, when } from './format.ts';
import { type FormBody, FormError, optionalField } from './forms.ts';
import { href, html, type Markup } from './html.ts';
import { csrfField, sendPage } from './layout.ts';
import { type ChangeFeed, serveLive } from './live.ts';

/** Who may see approvals: approvers, and auditors (read only). */
const READ = ['approvals:grant', 'audit:read'] as const;

/** Approval ids as the API accepts them (`apr_…`); anything else is a 404 without a database read. */
const APPROVAL_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** What the page says after a decision made here. */
const DONE = { approve: 'Approved: the agent may retry its call.', deny: 'Denied.' } as const;

/** The inbox's table of pending requests (the page's content and each live update). */
export function inboxTable(approvals: readonly StoredApproval[], now: number = Date.now()): Markup {
  if (approvals.length === 0) return html`<p id="inbox-empty">No pending approval requests.</p>`;
  return html`<table id="inbox-table">
    <caption class="muted">${approvals.length} pending, newest first</caption>
    <thead><tr>
      <th scope="col">Request</th><th scope="col">Agent</th><th scope="col">On behalf of</th><th scope="col">Tool</th>
      <th scope="col">Controls</th><th scope="col">Reason</th><th scope="col">Time left</th>
    </tr></thead>
    <tbody>${approvals.map(
      (a) => html`<tr data-approval="${a.id}">
        <td><a href="${href`/console/approvals/${a.id}`}">${a.id}</a></td>
        <td class="text">${a.agent}</td>
        <td class="text">${a.on_behalf_of ?? '—'}</td>
        <td class="text">${a.tool}</td>
        <td>${list(a.controls)}</td>
        <td class="text">${a.reasons.join('; ')}</td>
        <td>${timeLeft(a.expires_at, now)}</td>
      </tr>`,
    )}</tbody>
  </table>`;
}

/** `input.resource.properties.arguments` of a recorded decision (as the log keeps it), if any. */
function recordedArguments(input: unknown): unknown {
  const resource = isObject(input) ? input.resource : undefined;
  const properties = isObject(resource) ? resource.properties : undefined;
  return isObject(properties) && 'arguments' in properties ? properties.arguments : undefined;
}

/**
 * The arguments an approval is bound to: as the request carries them (masked), else as the
 * decision that asked for it recorded them (after the bundle's log mask), and always the digest
 * the binding is checked against.
 */
function boundArguments(approval: StoredApproval, decision: StoredDecision | null): Markup {
  const carried = (approval as StoredApproval & { arguments?: unknown }).arguments;
  const recorded = decision ? recordedArguments(decision.input) : undefined;
  const shown =
    carried !== undefined
      ? html`<p>As the request carries them (masked):</p>${json(carried)}`
      : recorded !== undefined
        ? html`<p>As the decision that asked for it recorded them (the bundle's log mask applied):</p>${json(recorded)}`
        : html`<p class="muted">The arguments themselves are not shown: neither the request nor a recorded decision carries them.</p>`;
  return html`${shown}
    <p>Arguments digest (SHA-256 of their canonical JSON; the approval is valid only for these): <code>${approval.arguments_digest}</code></p>`;
}

/**
 * The approvals inbox (`/console/approvals`, live over server-sent events on every replica) and one
 * request (`/console/approvals/:id`: what it is bound to, the decision that asked for it, its
 * chained history, and Approve / Deny with a Reason). Granting and denying go through the
 * approval store — the API's path: a human principal, not the agent, not the user it acts for.
 */
export async function approvalPages(
  app: FastifyInstance,
  opts: { deps: ConsoleDeps; feed: ChangeFeed },
): Promise<void> {
  const { approvals, policy, decisionLog } = opts.deps;
  const pending = () => approvals.list({ state: 'pending', limit: 200 });
  // NOTE: the inbox table does not depend on its viewer, so one read and one render per change
  // serve every open inbox of this replica (20 open inboxes re-reading 200 rows on each notice
  // halved decisions/s under a stream of new requests: bench/README.md, console-live).
  let shared: { generation: number; table: Promise<string> } | null = null;
  const liveTable = (): Promise<string> => {
    const { generation } = opts.feed;
    if (shared?.generation !== generation)
      shared = { generation, table: pending().then((rows) => inboxTable(rows).text) };
    return shared.table;
  };

  app.get('/approvals', { config: { console: { scope: READ } } }, async (request, reply) =>
    sendPage(request, reply, {
      title: 'Approvals',
      current: '/console/approvals',
      main: html`<p>Agent actions waiting for a person. This list updates by itself.</p>
        <div id="inbox" hx-ext="sse" sse-connect="/console/approvals/live" sse-swap="inbox">
          ${inboxTable(await pending())}
        </div>`,
    }),
  );

  // The inbox's live feed: the table again after every change on any replica (and every 30 s).
  app.get(
    '/approvals/live',
    { config: { console: { scope: READ } }, sse: { kind: 'only', serializer: String } },
    async (request, reply) =>
      serveLive(request, reply, {
        feed: opts.feed,
        sessions: opts.deps.sessions,
        event: 'inbox',
        render: liveTable,
      }),
  );

  app.get<{ Params: { id: string } }>(
    '/approvals/:id',
    { config: { console: { scope: READ } } },
    async (request, reply) => {
      const done = (request.query as Record<string, unknown>).done;
      const notice =
        done === 'approve' || done === 'deny' ? { kind: 'ok' as const, text: DONE[done] } : undefined;
      return renderApproval(request, reply, request.params.id, notice);
    },
  );

  const renderApproval = async (
    request: FastifyRequest,
    reply: FastifyReply,
    id: string,
    notice?: { kind: 'ok' | 'error'; text: string },
  ) => {
    const approval = APPROVAL_ID.test(id) ? await approvals.get(id) : null;
    if (!approval)
      throw Object.assign(new Error(`no approval ${id}`), { kind: 'not_found', code: 'approval_not_found' });
    const [history, decision] = await Promise.all([
      approvals.history(id),
      approval.decision_id && decisionLog ? decisionLog.get(approval.decision_id) : null,
    ]);
    const person = personOf(request);
    const actions =
      approval.state === 'pending' && can(request, 'approvals:grant')
        ? html`<h2>Decide</h2>
          <form class="stack" method="post" action="${href`/console/approvals/${approval.id}/decide`}">
            ${csrfField(request, reply)}
            <div>
              <label for="reason">Reason</label>
              <textarea id="reason" name="reason" maxlength="4000"></textarea>
            </div>
            ${person.principalType === 'human' ? '' : html`<p class="hint">Your sign-in is not a human principal (principal_type "human"): Verdict will refuse your decision.</p>`}
            <div class="actions">
              <button type="submit" name="verdict" value="approve">Approve</button>
              <button type="submit" name="verdict" value="deny" class="danger">Deny</button>
            </div>
          </form>`
        : '';
    return sendPage(request, reply, {
      title: `Approval ${approval.id}`,
      current: '/console/approvals',
      notice,
      main: html`<dl>
          <dt>State</dt><dd>${approval.state}</dd>
          <dt>Agent</dt><dd>${approval.agent}</dd>
          <dt>On behalf of</dt><dd>${approval.on_behalf_of ?? '—'}</dd>
          <dt>Tool</dt><dd>${approval.tool}</dd>
          <dt>Controls</dt><dd>${list(approval.controls)}</dd>
          <dt>Reasons</dt><dd>${approval.reasons.join('; ')}</dd>
          <dt>Requested</dt><dd>${when(approval.requested_at)} by ${approval.requested_by}</dd>
          <dt>${approval.state === 'granted' ? 'Window ends' : 'Expires'}</dt><dd>${when(approval.expires_at)} (${timeLeft(approval.expires_at)})</dd>
          <dt>Uses</dt><dd>${approval.uses} of ${approval.max_uses}; window ${approval.window_minutes} min once granted</dd>
          <dt>Decided</dt><dd>${approval.decided_by ? html`${when(approval.decided_at)} by ${approval.decided_by}: ${approval.decided_reason ?? ''}` : '—'}</dd>
        </dl>
        <h2>Bound arguments</h2>
        ${boundArguments(approval, decision)}
        <h2>The decision that asked for it</h2>
        ${
          decision
            ? html`<dl>
                <dt>Decision</dt><dd><code>${decision.id}</code></dd>
                <dt>Decided</dt><dd>${when(decision.decided_at)}</dd>
                <dt>Allow</dt><dd>${String(decision.allow)}</dd>
                <dt>Violated controls</dt><dd>${list(decision.violated_controls)}</dd>
                <dt>Revision</dt><dd><code>${decision.bundle_revision}</code></dd>
                <dt>Caller</dt><dd>${decision.caller_sub}</dd>
              </dl>`
            : html`<p class="muted">${approval.decision_id ? html`Decision <code>${approval.decision_id}</code> is not in the log.` : 'None recorded.'}</p>`
        }
        ${actions}
        <h2>History</h2>
        ${historyTable(history, 'Chained events of this approval, oldest first')}`,
    });
  };

  app.post<{ Params: { id: string } }>(
    '/approvals/:id/decide',
    { config: { console: { scope: 'approvals:grant' } } },
    async (request, reply) => {
      const body = request.body as FormBody;
      const verdict = body?.verdict;
      if (verdict !== 'approve' && verdict !== 'deny') throw new FormError('Choose Approve or Deny');
      const reason = optionalField(body, 'reason', 'Reason', 4_000);
      const person = personOf(request);
      const approver = { sub: person.sub, human: person.principalType === 'human' };
      const settings = grantSettings(policy.current());
      const id = request.params.id;
      if (verdict === 'approve') {
        opts.deps.onApprovalGranted?.(await approvals.grant(id, approver, reason, settings));
      } else {
        await approvals.deny(id, approver, reason, settings);
      }
      // Post/redirect/get: a reload shows the outcome, it does not post again.
      return reply.redirect(`${href`/console/approvals/${id}`}?done=${verdict}`, 303);
    },
  );
}
