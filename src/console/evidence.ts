import type { FastifyInstance } from 'fastify';
import { parseFilter } from '../audit/queries.ts';
import type { ConsoleDeps } from './console-plugin.ts';
import { when } from './format.ts';
import { FormError, optionalField, requiredField } from './forms.ts';
import { html, type Markup } from './html.ts';
import { sendPage } from './layout.ts';

const DAY = 86_400_000;

function okBadge(ok: boolean): Markup {
  return ok ? html`<span class="badge ok">intact</span>` : html`<span class="badge deny">broken</span>`;
}

/**
 * Chain and checkpoint status, and an evidence package for a resource (`/console/evidence`,
 * `audit:read`): the API's `/v1/audit/verify` and `/v1/evidence` computations. The status page
 * verifies the last day of the decision log (a longer window is the CLI's or the API's job); the
 * download streams the same signed tar.gz as the API.
 */
export async function evidencePages(app: FastifyInstance, opts: { deps: ConsoleDeps }): Promise<void> {
  const { verifyChains, buildEvidence } = opts.deps;

  app.get('/evidence', { config: { console: { scope: 'audit:read' } } }, async (request, reply) => {
    const now = new Date();
    const report = verifyChains ? await verifyChains({ from: new Date(now.getTime() - DAY), to: now }) : null;
    const status = report
      ? html`<dl class="facts" id="chain-status">
        <dt>Decision log, last 24 hours</dt><dd>${okBadge(report.ok && !report.firstBroken)} ${report.checked} records on ${report.writers} writer chains${report.firstBroken ? html` — first break: writer <code>${report.firstBroken.writerId}</code>, record ${report.firstBroken.seq}` : ''}</dd>
        ${
          report.events
            ? html`<dt>Policy and grant events</dt><dd>${okBadge(report.events.ok)} ${report.events.checked} events on ${report.events.writers} writer chains</dd>`
            : ''
        }
        ${
          report.checkpoints
            ? html`<dt>Signed checkpoints</dt><dd>${
                report.checkpoints.configured
                  ? html`${okBadge(report.checkpoints.ok)} ${report.checkpoints.checked} checked (key <code>${report.checkpoints.keyId ?? ''}</code>), latest ${when(report.checkpoints.latest)}${report.checkpoints.expired > 0 ? `, ${report.checkpoints.expired} past retention` : ''}`
                  : html`<span class="muted">no checkpoint key configured</span>`
              }</dd>`
            : ''
        }
      </dl>`
      : html`<p class="muted">Chain verification is not available on this Verdict.</p>`;
    const download = buildEvidence
      ? html`<form class="stack" method="get" action="/console/evidence/package">
        <div><label for="resource_type">Resource type</label><input id="resource_type" name="resource_type" required></div>
        <div><label for="resource_id">Resource</label><input id="resource_id" name="resource_id" required></div>
        <div><label for="from">From</label><input id="from" name="from" aria-describedby="window-hint"></div>
        <div><label for="to">To</label><input id="to" name="to" aria-describedby="window-hint">
          <p class="hint" id="window-hint">Optional, ISO 8601 (e.g. 2026-12-01T00:00:00Z).</p></div>
        <div><button type="submit">Download the evidence package</button></div>
      </form>`
      : html`<p class="muted">Evidence packages need a signing key (docs/operations.md).</p>`;
    return sendPage(request, reply, {
      title: 'Evidence',
      current: '/console/evidence',
      main: html`<h2>Chains and checkpoints</h2>${status}<h2>Evidence package for a resource</h2>${download}`,
    });
  });

  app.get('/evidence/package', { config: { console: { scope: 'audit:read' } } }, async (request, reply) => {
    if (!buildEvidence) throw new FormError('Evidence packages need a signing key.');
    const query = request.query as Record<string, unknown>;
    const resourceType = requiredField(query, 'resource_type', 'Resource type', 200);
    const resourceId = requiredField(query, 'resource_id', 'Resource', 500);
    const window = parseFilter({
      from: optionalField(query, 'from', 'From', 40) ?? undefined,
      to: optionalField(query, 'to', 'To', 40) ?? undefined,
    });
    const stream = await buildEvidence({ resourceType, resourceId, from: window.from, to: window.to });
    const name = `evidence-${resourceType}-${resourceId}`.replace(/[^A-Za-z0-9_.@-]/g, '_');
    return reply
      .type('application/gzip')
      .header('content-disposition', `attachment; filename="${name}.tar.gz"`)
      .send(stream);
  });
}
