import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ImpactRun } from '../bundles/impact.ts';
import type { BundleRevisionInfo } from '../bundles/lifecycle.ts';
import { ActivationConflictError, BUNDLES_TOPIC, normaliseDigest } from '../bundles/lifecycle.ts';
import { can, personOf } from './console-access.ts';
import type { ConsoleDeps } from './console-plugin.ts';
import { historyTable, when } from './format.ts';
import { type FormBody, FormError, optionalField } from './forms.ts';
import { href, html, type Markup } from './html.ts';
import { csrfField, sendPage } from './layout.ts';

const READ = ['bundles:read', 'audit:read'] as const;
const WRITE = 'bundles:write' as const;

/** The fixed outcome notices (`?done=`): never text from the request. */
const DONE: Record<string, string> = {
  shadow: 'The revision is now evaluated in shadow beside the active one.',
  unshadow: 'Shadow evaluation stopped.',
  activate: 'The revision is now active on the fleet.',
  rollback: 'Rolled back to the previously active revision.',
  unchanged: 'Nothing changed: the fleet already serves that.',
};

function short(digest: string | null): string {
  return digest ? `${digest.slice(0, 19)}…` : '—';
}

function digestParam(request: FastifyRequest): string {
  const digest = normaliseDigest((request.params as { digest: string }).digest);
  if (!digest) throw new FormError('not a revision digest');
  return digest;
}

/**
 * The policy register (`/console/policies`): the active and shadow revisions, every uploaded one
 * (who, when, signed), the fleet's replicas and what each serves, the shadow flip report with links
 * to sample decisions, the policy event timeline. Shadow, Activate (a compare-and-set on the active
 * revision the page showed), Roll back: `bundles:write`, through `PolicyLifecycle` — the API's path.
 */
export async function policyPages(app: FastifyInstance, opts: { deps: ConsoleDeps }): Promise<void> {
  const { lifecycle } = opts.deps;
  if (!lifecycle) return;
  const replicaTimeoutMs = opts.deps.config.bundles.replicaTimeoutMs;

  app.get('/policies', { config: { console: { scope: [...READ] } } }, async (request, reply) => {
    const now = Date.now();
    const [status, revisions, events, previous, report, impactRuns] = await Promise.all([
      lifecycle.status(replicaTimeoutMs),
      lifecycle.list({ limit: 100 }),
      lifecycle.events({ limit: 50 }),
      lifecycle.previousActive(),
      lifecycle.shadowReport({
        from: new Date(now - 24 * 3_600_000).toISOString(),
        to: new Date(now).toISOString(),
      }),
      lifecycle.impact.list({ limit: 20 }),
    ]);
    const state = status.desired.state;
    const uploads = await lifecycle.events({ action: 'upload', limit: 200 });
    const uploadReasons = new Map(uploads.map((e) => [e.subject ?? '', e.reason ?? '']));
    const writer = can(request, WRITE);
    const done = (request.query as Record<string, unknown>)?.done;
    const notice =
      typeof done === 'string' && DONE[done] ? { kind: 'ok' as const, text: DONE[done] } : undefined;
    const actionsOf = (r: BundleRevisionInfo): Markup => {
      if (!writer) return html``;
      const shadow =
        r.state === 'inactive'
          ? html`<form method="post" action="${href`/console/policies/${r.digest}/shadow`}">${csrfField(request, reply)}<button type="submit" class="secondary" aria-label="Shadow ${r.revision}">Shadow</button></form>`
          : '';
      const activate =
        r.state !== 'active'
          ? html`<form method="post" action="${href`/console/policies/${r.digest}/activate`}">${csrfField(request, reply)}
              <input type="hidden" name="expected_active" value="${state.active ?? 'none'}">
              <button type="submit" aria-label="Activate ${r.revision}">Activate</button></form>`
          : '';
      return html`<div class="actions">${shadow}${activate}</div>`;
    };
    const main = html`
      <h2>The fleet serves</h2>
      <dl class="facts">
        <dt>Active</dt><dd id="active-revision"><code>${state.active ?? 'none'}</code>${state.activeSince ? html` since ${when(state.activeSince)}` : ''}</dd>
        <dt>Shadow</dt><dd id="shadow-revision"><code>${state.shadow ?? 'none'}</code>${state.shadowSince ? html` since ${when(state.shadowSince)}` : ''}</dd>
      </dl>
      ${
        writer
          ? html`<div class="actions">
          ${
            state.shadow
              ? html`<form method="post" action="/console/policies/unshadow">${csrfField(request, reply)}<button type="submit" class="secondary">Stop shadow</button></form>`
              : ''
          }
          ${
            previous
              ? html`<form method="post" action="/console/policies/rollback">${csrfField(request, reply)}
                <input type="hidden" name="expected_active" value="${state.active ?? 'none'}">
                <button type="submit" class="danger" aria-describedby="rollback-hint">Roll back</button>
                <span class="hint" id="rollback-hint">to <code>${short(previous)}</code></span></form>`
              : ''
          }
        </div>`
          : ''
      }
      <h2>Revisions</h2>
      <table id="revisions">
        <thead><tr><th scope="col">Revision</th><th scope="col">Digest</th><th scope="col">State</th><th scope="col">Uploaded by</th><th scope="col">When</th><th scope="col">Reason</th><th scope="col">Signed</th>${writer ? html`<th scope="col">Actions</th>` : ''}</tr></thead>
        <tbody>${revisions.map(
          (r) => html`<tr data-revision="${r.revision}">
            <td class="text">${r.revision}</td>
            <td><code title="${r.digest}">${short(r.digest)}</code></td>
            <td>${r.state}</td>
            <td class="text">${r.uploadedBy}</td>
            <td>${when(r.uploadedAt)}</td>
            <td class="text">${uploadReasons.get(r.digest) ?? ''}</td>
            <td>${r.signed ? 'signed' : 'unsigned'}</td>
            ${writer ? html`<td>${actionsOf(r)}</td>` : ''}
          </tr>`,
        )}</tbody>
      </table>
      <h2>Impact analysis</h2>
      ${impactTable(impactRuns)}
      <h2>Replicas</h2>
      ${
        status.replicas.length === 0
          ? html`<p class="muted">No replica has reported.</p>`
          : html`<table id="replicas">
        <thead><tr><th scope="col">Replica</th><th scope="col">Host</th><th scope="col">Serves</th><th scope="col">Last heartbeat</th></tr></thead>
        <tbody>${status.replicas.map((replica) => {
          const bundles = (replica.state as Record<string, unknown>)[BUNDLES_TOPIC];
          const served = (typeof bundles === 'object' && bundles !== null ? bundles : {}) as {
            active?: unknown;
            shadow?: unknown;
            activeRevision?: unknown;
          };
          const fresh = served.active === state.active && (served.shadow ?? null) === state.shadow;
          return html`<tr>
            <td><code>${replica.id}</code></td>
            <td class="text">${replica.host} (pid ${replica.pid})</td>
            <td>active <code>${short(typeof served.active === 'string' ? served.active : null)}</code>, shadow <code>${short(typeof served.shadow === 'string' ? served.shadow : null)}</code>${fresh ? '' : html` <strong>(catching up)</strong>`}</td>
            <td>${when(replica.heartbeatAt)}</td>
          </tr>`;
        })}</tbody></table>`
      }
      <h2>Shadow flips, last 24 hours</h2>
      <p>${report.compared} decisions compared.</p>
      ${
        report.flips.length === 0
          ? html`<p class="muted">No flip.</p>`
          : html`<table id="flips">
        <thead><tr><th scope="col">Direction</th><th scope="col">Count</th><th scope="col">Sample decisions</th></tr></thead>
        <tbody>${report.flips.map(
          (flip) => html`<tr><td>${flip.direction.replaceAll('_', ' ')}</td><td>${flip.count}</td>
            <td>${flip.sampleIds.map((id) => html`<a href="${href`/console/decisions/${id}`}">${id.slice(0, 8)}</a> `)}</td></tr>`,
        )}</tbody></table>`
      }
      <h2>Policy events</h2>
      ${historyTable(events, 'Newest first')}`;
    return sendPage(request, reply, { title: 'Policies', current: '/console/policies', main, notice });
  });

  const expectedOf = (body: FormBody): string | null | undefined => {
    const raw = optionalField(body, 'expected_active', 'Expected active revision', 200);
    if (raw === null) return undefined;
    if (raw === 'none') return null;
    const digest = normaliseDigest(raw);
    if (!digest) throw new FormError('Expected active revision: not a digest');
    return digest;
  };

  const conflict = (request: FastifyRequest, reply: FastifyReply, err: ActivationConflictError) => {
    request.log.info({ err }, 'console: activation refused (the active revision changed)');
    return sendPage(request, reply.code(409), {
      title: 'Not done',
      main: html`<p><a href="/console/policies">Back to the policies</a></p>`,
      notice: {
        kind: 'error',
        text: 'Another revision became active since this page was shown; nothing was changed. Reload and decide again.',
      },
    });
  };

  app.post('/policies/:digest/shadow', { config: { console: { scope: WRITE } } }, async (request, reply) => {
    const { changed } = await lifecycle.setShadow(digestParam(request), personOf(request).sub, {
      reason: 'console',
    });
    return reply.redirect(`/console/policies?done=${changed ? 'shadow' : 'unchanged'}`, 303);
  });

  app.post('/policies/unshadow', { config: { console: { scope: WRITE } } }, async (request, reply) => {
    const { changed } = await lifecycle.setShadow(null, personOf(request).sub, { reason: 'console' });
    return reply.redirect(`/console/policies?done=${changed ? 'unshadow' : 'unchanged'}`, 303);
  });

  app.post(
    '/policies/:digest/activate',
    { config: { console: { scope: WRITE } } },
    async (request, reply) => {
      const digest = digestParam(request);
      try {
        const { changed } = await lifecycle.activate(digest, personOf(request).sub, {
          reason: 'console',
          expectedActive: expectedOf(request.body as FormBody),
        });
        return reply.redirect(`/console/policies?done=${changed ? 'activate' : 'unchanged'}`, 303);
      } catch (err) {
        if (err instanceof ActivationConflictError) return conflict(request, reply, err);
        throw err;
      }
    },
  );

  app.post('/policies/rollback', { config: { console: { scope: WRITE } } }, async (request, reply) => {
    const previous = await lifecycle.previousActive();
    if (!previous) throw new FormError('There is no previously active revision to roll back to.');
    try {
      const { changed } = await lifecycle.activate(previous, personOf(request).sub, {
        reason: 'console rollback',
        expectedActive: expectedOf(request.body as FormBody),
      });
      return reply.redirect(`/console/policies?done=${changed ? 'rollback' : 'unchanged'}`, 303);
    } catch (err) {
      if (err instanceof ActivationConflictError) return conflict(request, reply, err);
      throw err;
    }
  });
}

/**
 * The latest impact analysis runs (`verdict bundle impact`, `POST /v1/bundles/{digest}/impact`):
 * what each candidate would have changed on the recorded traffic, with links to sample decisions.
 */
function impactTable(runs: readonly ImpactRun[]): Markup {
  if (runs.length === 0)
    return html`<p class="muted">No impact analysis has run. <code>verdict bundle impact DIGEST</code> starts one.</p>`;
  return html`<table id="impact-runs">
    <thead><tr><th scope="col">Candidate</th><th scope="col">State</th><th scope="col">Window</th><th scope="col">Evaluated</th><th scope="col">Flips (samples)</th><th scope="col">By control</th><th scope="col">Run by</th></tr></thead>
    <tbody>${runs.map(
      (run) => html`<tr>
        <td><code title="${run.digest}">${short(run.digest)}</code></td>
        <td>${run.state}${run.error ? html` <span class="text">(${run.error.code})</span>` : ''}</td>
        <td>${when(run.from)} → ${when(run.to)}</td>
        <td>${run.evaluated} of ${run.total ?? '…'}${run.masked > 0 ? html` (${run.masked} masked)` : ''}</td>
        <td>${run.flips.map(
          (flip) =>
            html`<div>${flip.direction}: ${flip.count}${flip.masked > 0 ? html` (${flip.masked} not certain)` : ''} ${flip.sampleIds.map((id) => html`<a href="${href`/console/decisions/${id}`}">${id.slice(0, 8)}</a> `)}</div>`,
        )}</td>
        <td>${run.byControl.map((c) => html`<div class="text">${c.direction} ${c.control}: ${c.count}</div>`)}</td>
        <td class="text">${run.actor}</td>
      </tr>`,
    )}</tbody>
  </table>`;
}
