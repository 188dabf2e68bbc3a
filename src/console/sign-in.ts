import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SESSION_COOKIE, safeNext } from './console-access.ts';
import type { ConsoleDeps } from './console-plugin.ts';
import { type FormBody, optionalField } from './forms.ts';
import { href, html } from './html.ts';
import { csrfField, sendPage } from './layout.ts';

/** Why a pasted token did not sign in, in words (the reason codes are the API's). */
function refusalText(reason: string): string {
  switch (reason) {
    case 'token_expired':
      return 'This token has expired.';
    case 'key_source_unavailable':
      return 'The token keys cannot be fetched right now; try again shortly.';
    default:
      return 'This token was not accepted.';
  }
}

/**
 * Sign-in and sign-out: the token form (`/console/login`, when token sign-in is on), the embedded
 * banner's one-time link (`/console/login/link`), and `POST /console/logout`, which ends the
 * session on the server (its cookie is worthless afterwards, wherever it was copied).
 */
export async function signInPages(
  app: FastifyInstance,
  opts: { deps: ConsoleDeps; secureCookies: boolean | 'auto' },
): Promise<void> {
  const { deps } = opts;
  const { sessions, config } = deps;

  const setSession = (reply: FastifyReply, id: string, expiresAt: string) =>
    reply.setCookie(SESSION_COOKIE, id, {
      path: '/console',
      httpOnly: true,
      sameSite: 'lax',
      secure: opts.secureCookies,
      expires: new Date(expiresAt),
    });

  const loginPage = (request: FastifyRequest, reply: FastifyReply, notice?: string) => {
    const query = request.query as Record<string, unknown>;
    const next = safeNext(query?.next ?? (request.body as FormBody)?.next);
    const signedOut = query?.signed_out === '1';
    const form = config.console.tokenLogin
      ? html`<form class="stack" method="post" action="/console/login">
          ${csrfField(request, reply)}
          <input type="hidden" name="next" value="${next}">
          <div>
            <label for="token">Access token</label>
            <textarea id="token" name="token" required autocomplete="off" spellcheck="false" aria-describedby="token-hint"></textarea>
            <p class="hint" id="token-hint">A JWT signed by a key Verdict trusts, with the scopes of what you will do here (the same token the API accepts).</p>
          </div>
          <div><button type="submit">Sign in</button></div>
        </form>`
      : html`<p>Token sign-in is off on this Verdict (VERDICT_CONSOLE_TOKEN_LOGIN).</p>`;
    const organisation = deps.oidc
      ? html`<p><a class="button" href="${href`/console/login/oidc?next=${next}`}">Sign in with your organisation</a></p>`
      : '';
    return sendPage(request, reply, {
      title: 'Sign in',
      main: html`${organisation}${deps.oidc && !config.console.tokenLogin ? '' : form}`,
      notice: notice
        ? { kind: 'error', text: notice }
        : signedOut
          ? { kind: 'ok', text: 'You are signed out.' }
          : undefined,
    });
  };

  app.get('/login', { config: { console: { access: 'public' } } }, async (request, reply) =>
    loginPage(request, reply),
  );

  app.post('/login', { config: { console: { access: 'public' } } }, async (request, reply) => {
    if (!config.console.tokenLogin) return loginPage(request, reply.code(404));
    const body = request.body as FormBody;
    const token = optionalField(body, 'token', 'Access token', 16_384);
    if (token === null) return loginPage(request, reply.code(400), 'Paste an access token.');
    const verified = await deps.verifyToken(request, token);
    if (!verified.ok) {
      request.log.info({ reason: verified.reason }, 'console: token sign-in refused');
      return loginPage(request, reply.code(401), refusalText(verified.reason));
    }
    const { id, session } = await sessions.open(verified.caller, 'token', verified.expiresAt);
    request.log.info({ sub: session.caller.sub, iss: session.caller.iss }, 'console: signed in');
    setSession(reply, id, session.expiresAt);
    return reply.redirect(safeNext(body?.next), 303);
  });

  // The banner's link: a GET shows a button (link previews and prefetchers must not use it up);
  // the POST uses the code once.
  app.get('/login/link', { config: { console: { access: 'public' } } }, async (request, reply) => {
    const code = optionalField(request.query as FormBody, 'code', 'code', 128) ?? '';
    return sendPage(request, reply, {
      title: 'Sign in',
      main: html`<form class="stack" method="post" action="/console/login/link">
        ${csrfField(request, reply)}
        <input type="hidden" name="code" value="${code}">
        <p>This one-time link from Verdict's start banner signs you in as its development user.</p>
        <div><button type="submit">Sign in</button></div>
      </form>`,
    });
  });

  app.post('/login/link', { config: { console: { access: 'public' } } }, async (request, reply) => {
    const code = optionalField(request.body as FormBody, 'code', 'code', 128);
    const caller = code === null ? null : await sessions.useLink(code);
    if (!caller) {
      return loginPage(
        request,
        reply.code(401),
        'This sign-in link is used up or has expired; restart Verdict for a new one.',
      );
    }
    const { id, session } = await sessions.open(caller, 'link');
    setSession(reply, id, session.expiresAt);
    return reply.redirect('/console/approvals', 303);
  });

  app.post('/logout', { config: { console: { access: 'public' } } }, async (request, reply) => {
    const id = request.cookies[SESSION_COOKIE];
    if (id) await sessions.revoke(id);
    reply.clearCookie(SESSION_COOKIE, { path: '/console' });
    return reply.redirect('/console/login?signed_out=1', 303);
  });
}
