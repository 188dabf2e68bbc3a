import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { callerOfIdentity, OidcSignInError } from '../auth/oidc.ts';
import { SESSION_COOKIE, safeNext } from './console-access.ts';
import type { ConsoleDeps } from './console-plugin.ts';
import { html } from './html.ts';
import { sendPage } from './layout.ts';

/** The cookie that carries a started OIDC sign-in's id to its callback (and nowhere else). */
export const OIDC_PENDING_COOKIE = 'verdict_oidc';
/** How long a started sign-in may take at the provider. */
export const OIDC_PENDING_TTL_MS = 10 * 60_000;
const CALLBACK_PATH = '/console/callback';

/**
 * Sign-in with the organisation's OpenID provider (src/auth/oidc.ts; docs/console.md, 'Sign-in'):
 * `GET /console/login/oidc` starts the code flow and keeps its secrets (state, PKCE verifier,
 * nonce) server side as a one-time item whose id rides in an HttpOnly cookie limited to the
 * callback's path; `GET /console/callback` takes that item once, finishes the flow and opens a
 * session (method `oidc`) with the scopes the provider's claim maps to. The redirect URI is built
 * from VERDICT_PUBLIC_URL, never from the request's Host header.
 */
export async function oidcPages(
  app: FastifyInstance,
  opts: { deps: ConsoleDeps; secureCookies: boolean | 'auto' },
): Promise<void> {
  const { deps, secureCookies } = opts;
  const { oidc, sessions, config } = deps;
  if (!oidc) return;
  const redirectUri = `${config.publicUrl ?? `http://127.0.0.1:${config.port}`}${CALLBACK_PATH}`;

  const failed = (request: FastifyRequest, reply: FastifyReply, status: number, text: string) =>
    sendPage(request, reply.code(status), {
      title: 'Sign in',
      main: html`<p><a href="/console/login/oidc">Sign in with your organisation</a></p>`,
      notice: { kind: 'error', text },
    });

  app.get('/login/oidc', { config: { console: { access: 'public' } } }, async (request, reply) => {
    const next = safeNext((request.query as Record<string, unknown>)?.next);
    let started: Awaited<ReturnType<typeof oidc.startSignIn>>;
    try {
      started = await oidc.startSignIn(redirectUri);
    } catch (err) {
      request.log.warn({ err }, 'console: OIDC sign-in could not start');
      return failed(
        request,
        reply,
        503,
        'The identity provider cannot be reached right now; try again shortly.',
      );
    }
    const id = await sessions.keepPending(
      {
        state: started.state,
        codeVerifier: started.codeVerifier,
        nonce: started.nonce,
        redirectUri: started.redirectUri,
        next,
      },
      OIDC_PENDING_TTL_MS,
    );
    reply.setCookie(OIDC_PENDING_COOKIE, id, {
      path: CALLBACK_PATH,
      httpOnly: true,
      sameSite: 'lax',
      secure: secureCookies,
      maxAge: OIDC_PENDING_TTL_MS / 1000,
    });
    return reply.redirect(started.url, 303);
  });

  app.get('/callback', { config: { console: { access: 'public' } } }, async (request, reply) => {
    const id = request.cookies[OIDC_PENDING_COOKIE];
    reply.clearCookie(OIDC_PENDING_COOKIE, { path: CALLBACK_PATH });
    const pending = id ? await sessions.takePending(id) : null;
    if (
      !pending?.state ||
      pending.codeVerifier === undefined ||
      pending.nonce === undefined ||
      pending.redirectUri === undefined
    ) {
      request.log.info('console: OIDC callback without a pending sign-in (used, expired or never started)');
      return failed(request, reply, 401, 'This sign-in has expired or was already used; start again.');
    }
    const params: Record<string, string> = {};
    for (const [key, value] of Object.entries((request.query as Record<string, unknown>) ?? {})) {
      if (typeof value === 'string') params[key] = value;
    }
    let identity: Awaited<ReturnType<typeof oidc.finishSignIn>>;
    try {
      identity = await oidc.finishSignIn(params, {
        state: pending.state,
        codeVerifier: pending.codeVerifier,
        nonce: pending.nonce,
        redirectUri: pending.redirectUri,
      });
    } catch (err) {
      if (!(err instanceof OidcSignInError)) throw err;
      request.log.info({ reason: err.reason, message: err.message }, 'console: OIDC sign-in refused');
      return failed(request, reply, 401, 'The sign-in with your organisation did not succeed; try again.');
    }
    if (identity.scopes.length === 0) {
      request.log.info(
        { sub: identity.sub, iss: identity.iss, claim: identity.claimValues },
        'console: OIDC sign-in refused: no Verdict access',
      );
      return failed(
        request,
        reply,
        403,
        'You signed in, but your organisation gives you no Verdict access (no group maps to a Verdict scope).',
      );
    }
    const { id: sessionId, session } = await sessions.open(callerOfIdentity(identity), 'oidc');
    request.log.info(
      { sub: session.caller.sub, iss: session.caller.iss, method: 'oidc' },
      'console: signed in',
    );
    reply.setCookie(SESSION_COOKIE, sessionId, {
      path: '/console',
      httpOnly: true,
      sameSite: 'lax',
      secure: secureCookies,
      expires: new Date(session.expiresAt),
    });
    return reply.redirect(safeNext(pending.next), 303);
  });
}
