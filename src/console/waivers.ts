import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { controlCatalog, grantSettings, maxWaiverDays } from '../grants/control-catalog.ts';
import type { StoredWaiver, WaiverRequest, WaiverState } from '../grants/waiver-store.ts';
import { can, personOf } from './console-access.ts';
import type { ConsoleDeps } from './console-plugin.ts';
import { historyTable, list, timeLeft, when } from './format.ts';
import { type FormBody, FormError, optionalField, requiredField } from './forms.ts';
import { href, html, type Markup } from './html.ts';
import { csrfField, sendPage } from './layout.ts';
import { type ChangeFeed, serveLive } from './live.ts';

/** Who may see the register: requesters, approvers, auditors. */
const READ = ['exceptions:request', 'exceptions:approve', 'audit:read'] as const;
const STATES: readonly WaiverState[] = ['pending', 'active', 'expired', 'revoked', 'rejected'];
const WAIVER_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
/** The 'expiring within' choices of the register, in days. */
const EXPIRING_WITHIN = [7, 30, 90] as const;

/** What the page says after a change made here. */
const DONE: Record<string, string> = {
  requested: 'Waiver requested: it is pending until approved.',
  approve: 'Approved.',
  reject: 'Rejected.',
  revoke: 'Revoked.',
};

/** "needs 1 more approval", or the approvals it has. */
function approvalsNeeded(waiver: StoredWaiver): string {
  const have = waiver.approvals.length;
  if (waiver.state !== 'pending') return `${have} of ${waiver.approvers_required}`;
  const missing = waiver.approvers_required - have;
  return `${have} of ${waiver.approvers_required}: needs ${missing} more`;
}

function ticketText(ticket: StoredWaiver['ticket']): string {
  if (!ticket) return '—';
  return ticket.url && ticket.url !== ticket.key
    ? `${ticket.system}:${ticket.key} (${ticket.url})`
    : `${ticket.system}:${ticket.key}`;
}

function registerTable(waivers: readonly StoredWaiver[], caption: string): Markup {
  if (waivers.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table>
    <caption class="muted">${caption}</caption>
    <thead><tr>
      <th scope="col">Waiver</th><th scope="col">Control</th><th scope="col">Subject</th><th scope="col">Resource</th>
      <th scope="col">Action</th><th scope="col">Expires</th><th scope="col">Approvals</th><th scope="col">Requested by</th>
    </tr></thead>
    <tbody>${waivers.map(
      (w) => html`<tr data-waiver="${w.id}">
        <td><a href="${href`/console/waivers/${w.id}`}">${w.id}</a></td>
        <td>${w.control} <span class="muted">(${w.severity})</span></td>
        <td class="text">${w.subject_id ?? '—'}</td>
        <td class="text">${w.resource_id ?? '—'}</td>
        <td class="text">${w.action ?? '—'}</td>
        <td>${when(w.expires_at)}${w.state === 'active' ? html` <span class="muted">(${timeLeft(w.expires_at)})</span>` : ''}</td>
        <td>${approvalsNeeded(w)}</td>
        <td class="text">${w.requested_by}</td>
      </tr>`,
    )}</tbody>
  </table>`;
}

/** The ticket field: `SYSTEM:KEY`, a bare key, or a link (kept as text, never made a link). */
function parseTicket(text: string | null): WaiverRequest['ticket'] {
  if (text === null) return undefined;
  if (/^https?:\/\//i.test(text))
    return { system: 'link', key: text.slice(0, 256), url: text.slice(0, 2_048) };
  const match = /^([A-Za-z][A-Za-z0-9_-]{0,63}):(.+)$/.exec(text);
  return match
    ? { system: match[1] as string, key: (match[2] as string).trim() }
    : { system: 'ticket', key: text };
}

/** The `Expires on` date (YYYY-MM-DD) as the instant the waiver ends: that day's start, UTC. */
function expiryOf(text: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || !Number.isFinite(Date.parse(`${text}T00:00:00Z`))) {
    throw new FormError('Expires on: give a date (YYYY-MM-DD)');
  }
  return `${text}T00:00:00.000Z`;
}

/**
 * The waiver register (`/console/waivers`, by state, with 'expiring within' and the approvals each
 * still needs), the request form (`/console/waivers/new`) and one waiver (`/console/waivers/:id`:
 * its chained history, Approve / Reject / Revoke with a Reason). Every change goes through the
 * waiver store — the API's path, with its rules: the active bundle's catalog and maximum
 * durations, four eyes (the requester never approves), revocation by an approver or an admin.
 */
export async function waiverPages(
  app: FastifyInstance,
  opts: { deps: ConsoleDeps; feed: ChangeFeed },
): Promise<void> {
  const { waivers, policy } = opts.deps;

  /** The register's filter from the query: a state, and/or 'expiring within' (active ones). */
  const filterOf = (query: Record<string, unknown>) => {
    const state = STATES.find((s) => s === query.state);
    const days = EXPIRING_WITHIN.find((d) => String(d) === query.expiring_within);
    return { state, days };
  };

  /** The register's sections for a filter (the page's content, and each live update). */
  const register = async ({ state, days }: ReturnType<typeof filterOf>): Promise<Markup> => {
    const filter =
      days === undefined ? {} : { state: 'active' as const, expiringWithinSeconds: days * 86_400 };
    const found = await waivers.list({ ...(state ? { state } : {}), ...filter, limit: 500 });
    const shown = state ? [state] : days === undefined ? STATES : (['active'] as const);
    return html`${shown.map(
      (s) => html`<section id="waivers-${s}"><h2>${s[0]?.toUpperCase()}${s.slice(1)}</h2>
        ${registerTable(
          found.filter((w) => w.state === s),
          `${s} waivers, newest request first`,
        )}</section>`,
    )}`;
  };

  // NOTE: the register does not depend on its viewer: one read and one render per change and
  // filter serve every open register of this replica (as the approvals inbox does).
  let shared: { generation: number; byFilter: Map<string, Promise<string>> } | null = null;
  const liveRegister = (filter: ReturnType<typeof filterOf>): Promise<string> => {
    const { generation } = opts.feed;
    if (shared?.generation !== generation) shared = { generation, byFilter: new Map() };
    const key = `${filter.state ?? ''}/${filter.days ?? ''}`;
    let fragment = shared.byFilter.get(key);
    if (!fragment) {
      fragment = register(filter).then((m) => m.text);
      shared.byFilter.set(key, fragment);
    }
    return fragment;
  };

  app.get('/waivers', { config: { console: { scope: READ } } }, async (request, reply) => {
    const { state, days } = filterOf(request.query as Record<string, unknown>);
    const live = new URLSearchParams({
      ...(state ? { state } : {}),
      ...(days !== undefined ? { expiring_within: String(days) } : {}),
    }).toString();
    return sendPage(request, reply, {
      title: 'Waivers',
      current: '/console/waivers',
      main: html`${can(request, 'exceptions:request') ? html`<p><a href="/console/waivers/new">Request a waiver</a></p>` : ''}
        <form class="filters" method="get" action="/console/waivers">
          <div><label for="state">State</label>
            <select id="state" name="state"><option value="">All</option>${STATES.map(
              (s) => html`<option value="${s}"${s === state ? html` selected` : ''}>${s}</option>`,
            )}</select></div>
          <div><label for="expiring_within">Expiring within</label>
            <select id="expiring_within" name="expiring_within"><option value="">Any time</option>${EXPIRING_WITHIN.map(
              (d) => html`<option value="${d}"${d === days ? html` selected` : ''}>${d} days</option>`,
            )}</select></div>
          <div><button type="submit" class="secondary">Show</button></div>
        </form>
        <p class="muted">This register updates by itself.</p>
        <div id="register" hx-ext="sse" sse-connect="/console/waivers/live${live ? `?${live}` : ''}" sse-swap="register">
          ${await register({ state, days })}
        </div>`,
    });
  });

  // The register's live feed: its sections again after every waiver change on any replica (every
  // change publishes the grants version) and every 30 s (waivers lapse).
  app.get(
    '/waivers/live',
    { config: { console: { scope: READ } }, sse: { kind: 'only', serializer: String } },
    async (request, reply) => {
      const filter = filterOf(request.query as Record<string, unknown>);
      return serveLive(request, reply, {
        feed: opts.feed,
        sessions: opts.deps.sessions,
        event: 'register',
        render: () => liveRegister(filter),
      });
    },
  );

  const newForm = (request: FastifyRequest, reply: FastifyReply, error?: string, values: FormBody = {}) => {
    const engine = policy.current();
    const settings = grantSettings(engine);
    const controls = [...controlCatalog(engine)]
      .filter(([, c]) => c.waivable)
      .sort(([a], [b]) => a.localeCompare(b));
    const severities = [...new Set(controls.map(([, c]) => c.severity))].sort();
    const longest = Math.max(0, ...severities.map((s) => maxWaiverDays(settings, s)));
    const today = new Date().toISOString().slice(0, 10);
    const maxDate = new Date(Date.now() + longest * 86_400_000).toISOString().slice(0, 10);
    const value = (name: string) => (typeof values?.[name] === 'string' ? (values[name] as string) : '');
    const field = (name: string, label: string, hint: string, input: Markup) =>
      html`<div><label for="${name}">${label}</label>${input}${hint ? html`<p class="hint" id="${name}-hint">${hint}</p>` : ''}</div>`;
    return sendPage(request, reply, {
      title: 'Request a waiver',
      current: '/console/waivers',
      notice: error ? { kind: 'error', text: error } : undefined,
      main: html`<form class="stack" method="post" action="/console/waivers/new">
        ${csrfField(request, reply)}
        ${field(
          'control',
          'Control',
          'From the active bundle’s catalog; only waivable controls are listed.',
          html`<select id="control" name="control" required aria-describedby="control-hint">${controls.map(
            ([id, c]) =>
              html`<option value="${id}"${id === value('control') ? html` selected` : ''}>${id} — ${c.severity}, at most ${maxWaiverDays(settings, c.severity)} days</option>`,
          )}</select>`,
        )}
        ${field('subject_id', 'Subject', 'The agent or user the waiver covers (a subject, a resource, or both).', html`<input id="subject_id" name="subject_id" maxlength="256" value="${value('subject_id')}" aria-describedby="subject_id-hint">`)}
        ${field('resource_id', 'Resource', '', html`<input id="resource_id" name="resource_id" maxlength="256" value="${value('resource_id')}">`)}
        ${field('action', 'Action', 'Optional: one action name, e.g. tool.call.', html`<input id="action" name="action" maxlength="128" value="${value('action')}" aria-describedby="action-hint">`)}
        ${field('reason', 'Reason', '', html`<textarea id="reason" name="reason" required maxlength="4000">${value('reason')}</textarea>`)}
        ${field('compensating_controls', 'Compensating controls', 'One per line.', html`<textarea id="compensating_controls" name="compensating_controls" maxlength="20000" aria-describedby="compensating_controls-hint">${value('compensating_controls')}</textarea>`)}
        ${field('ticket', 'Ticket', 'SYSTEM:KEY (e.g. JIRA:SEC-123) or a link; shown as text.', html`<input id="ticket" name="ticket" maxlength="2048" value="${value('ticket')}" aria-describedby="ticket-hint">`)}
        ${field(
          'expires_on',
          'Expires on',
          `The waiver ends at the start of that day (UTC). Longest by severity: ${severities.map((s) => `${s} ${maxWaiverDays(settings, s)} days`).join(', ')}.`,
          html`<input id="expires_on" name="expires_on" type="date" required min="${today}" max="${maxDate}" value="${value('expires_on')}" aria-describedby="expires_on-hint">`,
        )}
        <div><button type="submit">Request waiver</button></div>
      </form>`,
    });
  };

  app.get('/waivers/new', { config: { console: { scope: 'exceptions:request' } } }, async (request, reply) =>
    newForm(request, reply),
  );

  app.post(
    '/waivers/new',
    { config: { console: { scope: 'exceptions:request' } } },
    async (request, reply) => {
      const body = request.body as FormBody;
      const person = personOf(request);
      let created: StoredWaiver;
      try {
        const compensating = (
          optionalField(body, 'compensating_controls', 'Compensating controls', 20_000) ?? ''
        )
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line !== '');
        if (compensating.length > 50) throw new FormError('Compensating controls: at most 50');
        if (compensating.some((c) => c.length > 1_000))
          throw new FormError('Compensating controls: at most 1000 characters each');
        const subject = optionalField(body, 'subject_id', 'Subject', 256);
        const resource = optionalField(body, 'resource_id', 'Resource', 256);
        const action = optionalField(body, 'action', 'Action', 128);
        const ticket = parseTicket(optionalField(body, 'ticket', 'Ticket', 2_048));
        const request_: WaiverRequest = {
          control: requiredField(body, 'control', 'Control', 64),
          ...(subject ? { subject_id: subject } : {}),
          ...(resource ? { resource_id: resource } : {}),
          ...(action ? { action } : {}),
          reason: requiredField(body, 'reason', 'Reason', 4_000),
          ...(compensating.length > 0 ? { compensating_controls: compensating } : {}),
          ...(ticket ? { ticket } : {}),
          expires_at: expiryOf(requiredField(body, 'expires_on', 'Expires on', 10)),
        };
        const engine = policy.current();
        created = await waivers.request(
          request_,
          { sub: person.sub, admin: person.scopes.includes('admin') },
          { catalog: controlCatalog(engine), settings: grantSettings(engine) },
        );
      } catch (err) {
        const refused = err as { kind?: unknown; message?: unknown };
        if (refused.kind === 'invalid' && typeof refused.message === 'string') {
          return newForm(request, reply.code(400), refused.message, body);
        }
        throw err;
      }
      return reply.redirect(`${href`/console/waivers/${created.id}`}?done=requested`, 303);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/waivers/:id',
    { config: { console: { scope: READ } } },
    async (request, reply) => {
      const id = request.params.id;
      const waiver = WAIVER_ID.test(id) ? await waivers.get(id) : null;
      if (!waiver)
        throw Object.assign(new Error(`no waiver ${id}`), { kind: 'not_found', code: 'exception_not_found' });
      const history = await waivers.history(id);
      const done = (request.query as Record<string, unknown>).done;
      const stored = waiver.state === 'expired' ? 'active' : waiver.state;
      const verbs =
        stored === 'pending'
          ? (['approve', 'reject'] as const)
          : stored === 'active'
            ? (['revoke'] as const)
            : [];
      const actions =
        verbs.length > 0 && can(request, 'exceptions:approve')
          ? html`<h2>Decide</h2>
          <form class="stack" method="post" action="${href`/console/waivers/${waiver.id}/decide`}">
            ${csrfField(request, reply)}
            <div><label for="reason">Reason</label>
              <textarea id="reason" name="reason" maxlength="4000" aria-describedby="reason-hint"></textarea>
              <p class="hint" id="reason-hint">Required to reject or revoke.</p></div>
            ${stored === 'pending' && waiver.requested_by === personOf(request).sub ? html`<p class="hint">You requested this waiver: another person must approve it (Verdict refuses your approval).</p>` : ''}
            <div class="actions">${verbs.map(
              (verb) =>
                html`<button type="submit" name="verdict" value="${verb}"${verb === 'approve' ? '' : html` class="danger"`}>${verb[0]?.toUpperCase()}${verb.slice(1)}</button>`,
            )}</div>
          </form>`
          : '';
      return sendPage(request, reply, {
        title: `Waiver ${waiver.id}`,
        current: '/console/waivers',
        notice:
          typeof done === 'string' && done in DONE ? { kind: 'ok', text: DONE[done] as string } : undefined,
        main: html`<dl>
          <dt>State</dt><dd>${waiver.state}</dd>
          <dt>Control</dt><dd>${waiver.control} (${waiver.severity})</dd>
          <dt>Subject</dt><dd>${waiver.subject_id ?? '—'}</dd>
          <dt>Resource</dt><dd>${waiver.resource_id ?? '—'}</dd>
          <dt>Action</dt><dd>${waiver.action ?? '—'}</dd>
          <dt>Reason</dt><dd>${waiver.reason}</dd>
          <dt>Compensating controls</dt><dd>${list(waiver.compensating_controls)}</dd>
          <dt>Ticket</dt><dd>${ticketText(waiver.ticket)}</dd>
          <dt>Expires</dt><dd>${when(waiver.expires_at)} (${timeLeft(waiver.expires_at)})</dd>
          <dt>Requested</dt><dd>${when(waiver.requested_at)} by ${waiver.requested_by}</dd>
          <dt>Approvals</dt><dd>${approvalsNeeded(waiver)}${waiver.approvals.map((a) => html`<br>${a.by} at ${when(a.at)}${a.reason ? `: ${a.reason}` : ''}`)}</dd>
          <dt>Closed</dt><dd>${waiver.closed_by ? html`${when(waiver.closed_at)} by ${waiver.closed_by}: ${waiver.closed_reason ?? ''}` : '—'}</dd>
        </dl>
        ${actions}
        <h2>History</h2>
        ${historyTable(history, 'Chained events of this waiver, oldest first')}`,
      });
    },
  );

  app.post<{ Params: { id: string } }>(
    '/waivers/:id/decide',
    { config: { console: { scope: 'exceptions:approve' } } },
    async (request, reply) => {
      const body = request.body as FormBody;
      const verdict = body?.verdict;
      const person = personOf(request);
      const actor = { sub: person.sub, admin: person.scopes.includes('admin') };
      const id = request.params.id;
      if (verdict === 'approve') {
        await waivers.approve(id, actor, optionalField(body, 'reason', 'Reason', 4_000));
      } else if (verdict === 'reject' || verdict === 'revoke') {
        await waivers[verdict](id, actor, requiredField(body, 'reason', 'Reason', 4_000));
      } else {
        throw new FormError('Choose Approve, Reject or Revoke');
      }
      return reply.redirect(`${href`/console/waivers/${id}`}?done=${verdict}`, 303);
    },
  );
}
