import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isUuid } from '../audit/queries.ts';
import { evaluateDecision } from '../decisions/evaluate.ts';
import type { PolicyResult } from '../decisions/types.ts';
import { PolicyEngine } from '../engine/engine.ts';
import { can } from './console-access.ts';
import type { ConsoleDeps } from './console-plugin.ts';
import { type FormBody, FormError, optionalField, requiredField } from './forms.ts';
import { html, type Markup } from './html.ts';
import { csrfField, sendPage } from './layout.ts';

const READ = ['bundles:read', 'audit:read'] as const;
const ENGINE_CACHE_LIMIT = 4;
const MAX_INPUT = 256 * 1024;

/** A JSON value as text in a keyboard-scrollable block. */
function block(value: unknown, label: string): Markup {
  return html`<pre tabindex="0" aria-label="${label}">${JSON.stringify(value, null, 2)}</pre>`;
}

/** The result of one evaluation: allow or deny, each violated control, obligations. */
export function resultView(result: PolicyResult, caption: string): Markup {
  return html`<section aria-label="${caption}">
    <p class="result">${caption}: ${result.allow ? html`<span class="badge ok">allow</span>` : html`<span class="badge deny">deny</span>`}</p>
    ${
      result.violations.length === 0
        ? html`<p class="muted">No violation.</p>`
        : html`<table><thead><tr><th scope="col">Control</th><th scope="col">Severity</th><th scope="col">Message</th></tr></thead>
      <tbody>${result.violations.map(
        (v) =>
          html`<tr><td><code>${v.control}</code></td><td>${v.severity ?? ''}</td><td class="text">${v.message}</td></tr>`,
      )}</tbody></table>`
    }
    ${result.obligations.length > 0 ? block(result.obligations, 'Obligations') : ''}
  </section>`;
}

/**
 * The playground (`/console/playground`): an input, pasted or opened from a recorded decision,
 * evaluated on the active revision or any uploaded one, and the result with its controls. It calls
 * the engine directly, never the decision service: nothing is recorded.
 */
export async function playgroundPages(app: FastifyInstance, opts: { deps: ConsoleDeps }): Promise<void> {
  const { policy, lifecycle, revisions, decisionLog } = opts.deps;
  const engines = new Map<string, PolicyEngine>();

  const engineFor = async (digest: string | null): Promise<PolicyEngine> => {
    const active = policy.current();
    if (digest === null || digest === active.ref.digest) return active;
    const cached = engines.get(digest);
    if (cached) return cached;
    const bundle = revisions ? await revisions.get(digest) : null;
    if (!bundle) throw new FormError('Revision: no such revision is stored');
    const engine = PolicyEngine.fromBundle(bundle, { refuseUnsupported: false });
    if (engines.size >= ENGINE_CACHE_LIMIT) {
      const oldest = engines.keys().next().value;
      if (oldest !== undefined) engines.delete(oldest);
    }
    engines.set(digest, engine);
    return engine;
  };

  const page = async (
    request: FastifyRequest,
    reply: FastifyReply,
    form: { input: string; revision: string; entrypoint: string },
    outcome?: Markup,
  ) => {
    const active = policy.current();
    const stored = lifecycle ? await lifecycle.list({ limit: 100 }) : [];
    const options = stored.filter((r) => r.digest !== active.ref.digest);
    return sendPage(request, reply, {
      title: 'Playground',
      current: '/console/playground',
      main: html`<p>Evaluates an input on a policy revision. Nothing is recorded as a decision.</p>
      <form class="stack" method="post" action="/console/playground">
        ${csrfField(request, reply)}
        <div>
          <label for="input">Input</label>
          <textarea id="input" name="input" rows="14" spellcheck="false" aria-describedby="input-hint">${form.input}</textarea>
          <p class="hint" id="input-hint">The policy's input as JSON (as a decision records it: subject, action, resource, context…).</p>
        </div>
        <div>
          <label for="revision">Revision</label>
          <select id="revision" name="revision">
            <option value="">Active: ${active.ref.revision ?? active.ref.digest}</option>
            ${options.map(
              (r) =>
                html`<option value="${r.digest}"${form.revision === r.digest ? html` selected` : ''}>${r.revision} (${r.state})</option>`,
            )}
          </select>
        </div>
        <div>
          <label for="entrypoint">Entrypoint</label>
          <input id="entrypoint" name="entrypoint" value="${form.entrypoint}">
        </div>
        <div><button type="submit">Evaluate</button></div>
      </form>
      ${outcome ? html`<h2>Result</h2><div id="result">${outcome}</div>` : ''}`,
    });
  };

  app.get('/playground', { config: { console: { scope: [...READ] } } }, async (request, reply) => {
    const decisionId = optionalField(request.query as FormBody, 'decision', 'Decision', 64);
    let input = '';
    let entrypoint = 'verdict/decision';
    if (decisionId && isUuid(decisionId) && decisionLog && can(request, 'audit:read')) {
      const recorded = await decisionLog.get(decisionId);
      if (recorded) {
        input = JSON.stringify(recorded.input, null, 2);
        entrypoint = recorded.entrypoint;
      }
    }
    return page(request, reply, { input, revision: '', entrypoint });
  });

  app.post('/playground', { config: { console: { scope: [...READ] } } }, async (request, reply) => {
    const body = request.body as FormBody;
    const input = requiredField(body, 'input', 'Input', MAX_INPUT);
    const revision = optionalField(body, 'revision', 'Revision', 200) ?? '';
    const entrypoint = optionalField(body, 'entrypoint', 'Entrypoint', 200) ?? 'verdict/decision';
    const form = { input, revision, entrypoint };
    try {
      JSON.parse(input);
    } catch {
      return page(
        request,
        reply.code(400),
        form,
        html`<p class="notice error" role="alert">The input is not JSON.</p>`,
      );
    }
    const engine = await engineFor(revision === '' ? null : revision);
    if (!engine.hasEntrypoint(entrypoint)) {
      return page(
        request,
        reply.code(400),
        form,
        html`<p class="notice error" role="alert">This revision has no entrypoint ${entrypoint}.</p>`,
      );
    }
    const evaluation = evaluateDecision(engine, 'native', entrypoint, input);
    return page(
      request,
      reply,
      form,
      html`<p>On <code>${engine.ref.revision ?? ''}</code> (<code>${engine.ref.digest}</code>), in ${evaluation.evalMicros} µs.</p>
        ${resultView(evaluation.result, 'Outcome')}`,
    );
  });
}
