import type { FastifyInstance } from 'fastify';
import {
  type DecisionSearchParams,
  isUuid,
  parseFilter,
  parsePage,
  type StoredDecision,
} from '../audit/queries.ts';
import type { PolicyEngine } from '../engine/engine.ts';
import type { ConsoleDeps } from './console-plugin.ts';
import { list, when } from './format.ts';
import { href, html, type Markup } from './html.ts';
import { sendPage } from './layout.ts';

/** The explorer's filters: the query parameters of `GET /v1/decisions`, with their labels. */
const FILTERS: readonly { name: keyof DecisionSearchParams; label: string; hint?: string }[] = [
  { name: 'subject_id', label: 'Subject' },
  { name: 'subject_type', label: 'Subject type' },
  { name: 'action', label: 'Action' },
  { name: 'resource_type', label: 'Resource type' },
  { name: 'resource_id', label: 'Resource' },
  { name: 'control', label: 'Violated control' },
  { name: 'caller_sub', label: 'Caller' },
  { name: 'entrypoint', label: 'Entrypoint' },
  { name: 'revision', label: 'Policy revision' },
  { name: 'exception', label: 'Waiver id' },
  { name: 'from', label: 'From', hint: 'ISO 8601, e.g. 2026-12-01T00:00:00Z' },
  { name: 'to', label: 'To', hint: 'ISO 8601' },
];
const PARAMS = new Set<string>([...FILTERS.map((f) => f.name), 'allow', 'limit', 'cursor']);

/** The query's search parameters: known names, one string each, blanks dropped. */
function searchParams(query: unknown): DecisionSearchParams {
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries((query as Record<string, unknown>) ?? {})) {
    if (!PARAMS.has(key) || typeof value !== 'string' || value.trim() === '') continue;
    params[key] = value.trim();
  }
  return params as DecisionSearchParams;
}

/** `/console/decisions?…` with these parameters (each value percent-encoded). */
function explorerLink(params: DecisionSearchParams): string {
  const query = new URLSearchParams(params as Record<string, string>).toString();
  return `/console/decisions${query ? `?${query}` : ''}`;
}

/**
 * What the active bundle's catalog (`data.verdict_data.controls[id]`) says of a control: its
 * `description` (or `title`) when the bundle gives one, its severity and whether it may be waived.
 */
function controlDescription(engine: PolicyEngine, control: string): string | null {
  const data = engine.bundle.data.verdict_data as { controls?: Record<string, unknown> } | undefined;
  const entry = data?.controls?.[control] as Record<string, unknown> | undefined;
  if (!entry || typeof entry !== 'object') return null;
  const parts: string[] = [];
  for (const key of ['description', 'title']) {
    if (typeof entry[key] === 'string') {
      parts.push(entry[key] as string);
      break;
    }
  }
  if (typeof entry.severity === 'string') parts.push(`severity ${entry.severity}`);
  parts.push(entry.waivable === true ? 'waivable' : 'not waivable');
  return parts.join('; ');
}

/** A JSON value as text in a scrollable block a keyboard can reach (and scroll). */
export function jsonBlock(value: unknown, label: string): Markup {
  return html`<pre tabindex="0" aria-label="${label}">${JSON.stringify(value, null, 2)}</pre>`;
}

function outcome(d: StoredDecision): Markup {
  return d.allow ? html`<span class="badge ok">allow</span>` : html`<span class="badge deny">deny</span>`;
}

/**
 * The decision explorer (`/console/decisions`: the filters of `GET /v1/decisions` as query
 * parameters, keyset paging) and one decision's why (`/console/decisions/{id}`). Read only:
 * `audit:read`.
 */
export async function decisionPages(app: FastifyInstance, opts: { deps: ConsoleDeps }): Promise<void> {
  const { decisionLog, policy, replayer } = opts.deps;
  if (!decisionLog) return;

  app.get('/decisions', { config: { console: { scope: 'audit:read' } } }, async (request, reply) => {
    const params = searchParams(request.query);
    const filter = parseFilter(params);
    const page = parsePage({ limit: params.limit ?? '50', cursor: params.cursor });
    const result = await decisionLog.search(filter, page);
    const { cursor: _cursor, ...withoutCursor } = params;
    const form = html`<form class="filters" method="get" action="/console/decisions" role="search" aria-label="Filter decisions">
      ${FILTERS.map(
        (f) => html`<div><label for="f-${f.name}">${f.label}</label>
          <input id="f-${f.name}" name="${f.name}" value="${params[f.name] ?? ''}"${f.hint ? html` placeholder="${f.hint}"` : ''}></div>`,
      )}
      <div><label for="f-allow">Outcome</label>
        <select id="f-allow" name="allow">
          <option value=""${params.allow === undefined ? html` selected` : ''}>Any</option>
          <option value="false"${params.allow === 'false' ? html` selected` : ''}>Denied</option>
          <option value="true"${params.allow === 'true' ? html` selected` : ''}>Allowed</option>
        </select></div>
      <div class="buttons"><button type="submit">Search</button> <a href="/console/decisions">Clear</a></div>
    </form>`;
    const rows =
      result.items.length === 0
        ? html`<p class="muted" id="no-decisions">No decision matches.</p>`
        : html`<table id="decisions">
      <caption class="muted">Newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Outcome</th><th scope="col">Subject</th><th scope="col">Action</th><th scope="col">Resource</th><th scope="col">Violated controls</th><th scope="col">Decision</th></tr></thead>
      <tbody>${result.items.map(
        (d) => html`<tr data-decision="${d.id}">
          <td>${when(d.decided_at)}</td>
          <td>${outcome(d)}</td>
          <td class="text">${d.subject_type ?? ''} ${d.subject_id ?? ''}</td>
          <td class="text">${d.action_name ?? ''}</td>
          <td class="text">${d.resource_type ?? ''} ${d.resource_id ?? ''}</td>
          <td>${list(d.violated_controls)}</td>
          <td><a href="${href`/console/decisions/${d.id}`}">Why <span class="visually-hidden">decision ${d.id}</span></a></td>
        </tr>`,
      )}</tbody></table>`;
    const next =
      result.hasMore && result.nextCursor
        ? html`<p><a rel="next" href="${explorerLink({ ...withoutCursor, cursor: result.nextCursor })}">Next page</a></p>`
        : '';
    return sendPage(request, reply, {
      title: 'Decisions',
      current: '/console/decisions',
      main: html`${form}${rows}${next}`,
    });
  });

  app.get('/decisions/:id', { config: { console: { scope: 'audit:read' } } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const d = isUuid(id) ? await decisionLog.get(id) : null;
    if (!d) {
      return sendPage(request, reply.code(404), {
        title: 'Not found',
        main: html`<p><a href="/console/decisions">Back to the decisions</a></p>`,
        notice: { kind: 'error', text: 'There is no such decision.' },
      });
    }
    const result = (d.result ?? {}) as {
      violations?: { control?: unknown; message?: unknown; severity?: unknown; waived_by?: unknown }[];
      obligations?: unknown[];
      approvals?: unknown[];
    };
    const engine = policy.current();
    const violations = Array.isArray(result.violations) ? result.violations : [];
    const approvals = Array.isArray(result.approvals) ? result.approvals.map(String) : [];
    const obligations = Array.isArray(result.obligations) ? result.obligations : [];
    const violationTable =
      violations.length === 0
        ? html`<p class="muted">No violation.</p>`
        : html`<table id="violations">
      <thead><tr><th scope="col">Control</th><th scope="col">Severity</th><th scope="col">Message</th><th scope="col">The catalog's entry</th><th scope="col">Waived by</th></tr></thead>
      <tbody>${violations.map((v) => {
        const control = String(v.control ?? '');
        const waiver = typeof v.waived_by === 'string' ? v.waived_by : null;
        return html`<tr>
          <td><code>${control}</code></td>
          <td>${typeof v.severity === 'string' ? v.severity : ''}</td>
          <td class="text">${String(v.message ?? '')}</td>
          <td class="text">${controlDescription(engine, control) ?? html`<span class="muted">not in the active catalog</span>`}</td>
          <td>${waiver ? (isUuid(waiver) ? html`<a href="${href`/console/waivers/${waiver}`}">${waiver}</a>` : waiver) : html`<span class="muted">—</span>`}</td>
        </tr>`;
      })}</tbody></table>`;
    return sendPage(request, reply, {
      title: `Decision ${d.id}`,
      current: '/console/decisions',
      main: html`<p><a href="/console/decisions">Back to the decisions</a></p>
      <div class="actions">
        ${replayer ? html`<form method="get" action="${href`/console/decisions/${d.id}/replay`}"><button type="submit">Replay</button></form>` : ''}
        <form method="get" action="/console/playground"><input type="hidden" name="decision" value="${d.id}"><button type="submit" class="secondary">Open in the playground</button></form>
      </div>
      <dl class="facts">
        <dt>Outcome</dt><dd id="outcome">${outcome(d)}</dd>
        <dt>When</dt><dd>${when(d.decided_at)}</dd>
        <dt>Caller</dt><dd class="text">${d.caller_sub}</dd>
        <dt>Subject</dt><dd class="text">${d.subject_type ?? ''} ${d.subject_id ?? ''}</dd>
        <dt>Action</dt><dd class="text">${d.action_name ?? ''}</dd>
        <dt>Resource</dt><dd class="text">${d.resource_type ?? ''} ${d.resource_id ?? ''}</dd>
        <dt>Entrypoint</dt><dd><code>${d.entrypoint}</code></dd>
        <dt>Policy revision</dt><dd><code>${d.bundle_revision}</code> (digest <code>${d.bundle_digest}</code>)</dd>
        <dt>Waivers applied</dt><dd>${
          d.exceptions.length === 0
            ? html`<span class="muted">—</span>`
            : d.exceptions.map((w) =>
                isUuid(w) ? html`<a href="${href`/console/waivers/${w}`}">${w}</a> ` : html`${w} `,
              )
        }</dd>
        <dt>Approvals used</dt><dd>${
          approvals.length === 0
            ? html`<span class="muted">—</span>`
            : approvals.map((a) =>
                isUuid(a) ? html`<a href="${href`/console/approvals/${a}`}">${a}</a> ` : html`${a} `,
              )
        }</dd>
        <dt>In the chain</dt><dd>writer <code>${d.writer_id}</code>, record ${d.seq}; hash <code>${d.hash.slice(0, 16)}…</code> after <code>${d.prev_hash.slice(0, 16)}…</code></dd>
      </dl>
      <h2>Violations</h2>
      ${violationTable}
      <h2>Obligations</h2>
      ${obligations.length === 0 ? html`<p class="muted">None.</p>` : jsonBlock(obligations, 'Obligations')}
      <h2>Input (as recorded, masked)</h2>
      ${jsonBlock(d.input, 'Input')}`,
    });
  });

  app.get(
    '/decisions/:id/replay',
    { config: { console: { scope: 'audit:read' } } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const report = replayer && isUuid(id) ? await replayer.replay(id) : null;
      if (!report) {
        return sendPage(request, reply.code(404), {
          title: 'Not found',
          main: html`<p><a href="/console/decisions">Back to the decisions</a></p>`,
          notice: { kind: 'error', text: 'There is no such decision.' },
        });
      }
      const outcomeOf = (o: typeof report.stored, caption: string) => html`<section aria-label="${caption}">
      <h2>${caption}</h2>
      <p>Revision <code>${o.revision ?? ''}</code> (<code>${o.digest}</code>)</p>
      ${
        !o.available || o.error
          ? html`<p class="notice error">${o.error?.message ?? 'not evaluated'}</p>`
          : html`<p>${o.allow ? html`<span class="badge ok">allow</span>` : html`<span class="badge deny">deny</span>`}
            — ${o.matches ? 'the same result as recorded' : html`<strong>differs from the recorded result</strong>`}</p>
            ${jsonBlock(o.result, `Result on ${caption}`)}`
      }
    </section>`;
      return sendPage(request, reply, {
        title: `Replay of ${id}`,
        current: '/console/decisions',
        main: html`<p><a href="${href`/console/decisions/${id}`}">Back to the decision</a></p>
        <p>Recorded: ${report.recorded.allow ? html`<span class="badge ok">allow</span>` : html`<span class="badge deny">deny</span>`} on <code>${report.recorded.revision}</code>.
        ${report.masked ? 'The recorded input was masked: the replays ran on less than the policy saw.' : ''}</p>
        <div id="replay">${outcomeOf(report.stored, 'On its own revision')}${outcomeOf(report.active, 'On the active revision')}</div>`,
      });
    },
  );
}
