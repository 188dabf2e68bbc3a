import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Scope } from '../auth/caller.ts';
import { can, csrfTokenOf } from './console-access.ts';
import { html, type Markup } from './html.ts';

/** One entry of the console's navigation: shown to people who hold one of its scopes. */
export interface NavItem {
  label: string;
  /** A console path (a constant: never built from data). */
  path: string;
  scope: Scope | readonly Scope[];
}

/** The navigation, in order. A new page adds its entry here (docs/console.md, 'Adding a page'). */
export const NAV: readonly NavItem[] = [
  { label: 'Approvals', path: '/console/approvals', scope: ['approvals:grant', 'audit:read'] },
  {
    label: 'Waivers',
    path: '/console/waivers',
    scope: ['exceptions:request', 'exceptions:approve', 'audit:read'],
  },
  { label: 'Decisions', path: '/console/decisions', scope: 'audit:read' },
  { label: 'Policies', path: '/console/policies', scope: ['bundles:read', 'audit:read'] },
  { label: 'Playground', path: '/console/playground', scope: ['bundles:read', 'audit:read'] },
  { label: 'KPIs', path: '/console/kpis', scope: 'audit:read' },
  { label: 'Evidence', path: '/console/evidence', scope: 'audit:read' },
];

/** What a page hands to the layout. */
export interface PageView {
  /** The page's title: the document's <title> and its one <h1>. */
  title: string;
  /** The page's content, below the <h1>. */
  main: Markup;
  /** The navigation entry to mark as current (its path). */
  current?: string;
  /** A notice above the content (the outcome of a form, an error); shown as text. */
  notice?: { kind: 'ok' | 'error'; text: string };
}

/** A hidden CSRF field: every console <form method="post"> carries one. */
export function csrfField(request: FastifyRequest, reply: FastifyReply): Markup {
  return html`<input type="hidden" name="_csrf" value="${csrfTokenOf(request, reply)}">`;
}

/** The whole document: head (assets with this response's nonce), header, navigation, main. */
export function layout(request: FastifyRequest, reply: FastifyReply, view: PageView): Markup {
  const { nonce, session } = request.consoleState;
  const nav = NAV.filter((item) => can(request, item.scope));
  const who = session
    ? html`<div class="who">
        <span>Signed in as <strong>${session.caller.sub}</strong>${session.caller.iss ? html` (${session.caller.iss})` : ''}</span>
        <form method="post" action="/console/logout">${csrfField(request, reply)}<button type="submit">Sign out</button></form>
      </div>`
    : '';
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"selfRequestsOnly":true,"historyCacheSize":0}'>
<title>${view.title} · Verdict console</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script nonce="${nonce}" src="/console/assets/htmx.min.js"></script>
<script nonce="${nonce}" src="/console/assets/htmx-sse.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
  <p class="brand"><a href="/console">Verdict console</a></p>
  ${
    nav.length > 0
      ? html`<nav aria-label="Console"><ul>${nav.map(
          (item) =>
            html`<li><a href="${item.path}"${item.path === view.current ? html` aria-current="page"` : ''}>${item.label}</a></li>`,
        )}</ul></nav>`
      : ''
  }
  ${who}
</header>
<main id="main">
<h1>${view.title}</h1>
${view.notice ? html`<p class="notice ${view.notice.kind}" role="${view.notice.kind === 'error' ? 'alert' : 'status'}">${view.notice.text}</p>` : ''}
${view.main}
</main>
</body>
</html>`;
}

/** Sends a whole page (status 200 unless the reply already has another). */
export function sendPage(request: FastifyRequest, reply: FastifyReply, view: PageView): FastifyReply {
  return reply.type('text/html; charset=utf-8').send(layout(request, reply, view).text);
}

/** Sends a fragment (an htmx swap, an SSE payload's twin): no layout around it. */
export function sendFragment(reply: FastifyReply, fragment: Markup): FastifyReply {
  return reply.type('text/html; charset=utf-8').send(fragment.text);
}
