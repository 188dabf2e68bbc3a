import { randomBytes } from 'node:crypto';
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import { fastifySSE } from '@fastify/sse';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CheckpointReport } from '../audit/checkpoints.ts';
import type { EventVerifyReport } from '../audit/event-log.ts';
import type { KpiBucket, KpiReport } from '../audit/kpis.ts';
import type { DecisionLogReader } from '../audit/queries.ts';
import type { DecisionReplayer, RevisionSource } from '../audit/replay.ts';
import type { VerifyReport } from '../audit/verify.ts';
import type { OidcSignIn } from '../auth/oidc.ts';
import type { PolicyLifecycle } from '../bundles/lifecycle.ts';
import type { Config } from '../config/resolve-config.ts';
import type { Caller } from '../decisions/types.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import type { EvidenceQuery } from '../evidence/package.ts';
import type { ApprovalStore, StoredApproval } from '../grants/approval-store.ts';
import { APPROVALS_TOPIC, GRANTS_TOPIC } from '../grants/grants-version.ts';
import type { WaiverStore } from '../grants/waiver-store.ts';
import type { SessionStore } from '../sessions/session-store.ts';
import type { Bus } from '../store/bus.ts';
import { approvalPages } from './approvals.ts';
import { consoleAssets } from './assets.ts';
import { type ConsoleAccess, CSRF_COOKIE, can, SESSION_COOKIE } from './console-access.ts';
import { decisionPages } from './decisions.ts';
import { evidencePages } from './evidence.ts';
import { html } from './html.ts';
import { kpiPages } from './kpis.ts';
import { sendPage } from './layout.ts';
import { ChangeFeed } from './live.ts';
import { oidcPages } from './oidc-routes.ts';
import { playgroundPages } from './playground.ts';
import { policyPages } from './policies.ts';
import { signInPages } from './sign-in.ts';
import { waiverPages } from './waivers.ts';

/** What `verifyAccessToken` (src/http/auth.ts) answers: the API's own token verification. */
export type TokenCheck = { ok: true; caller: Caller; expiresAt: number } | { ok: false; reason: string };

/** Everything the console needs, handed over by the HTTP app (built by the composition root). */
export interface ConsoleDeps {
  config: Config;
  sessions: SessionStore;
  policy: ActivePolicy;
  /** The grants' own stores: the console changes grants only through them (the API's path). */
  approvals: ApprovalStore;
  waivers: WaiverStore;
  /** The decision log (the decision behind an approval); absent without an audit trail. */
  decisionLog?: DecisionLogReader;
  /** The notice bus: approval and grant changes from every replica reach the live views. */
  bus: Bus;
  /** Verifies a pasted token exactly as the API verifies a bearer token. */
  verifyToken(request: FastifyRequest, token: string): Promise<TokenCheck>;
  /** The policy lifecycle (the policies page, the playground's revisions); absent without a database. */
  lifecycle?: PolicyLifecycle;
  /** Stored revisions' bundles (the playground evaluates any of them). */
  revisions?: RevisionSource;
  /** Replays a recorded decision on its own and on the active revision. */
  replayer?: DecisionReplayer;
  /** The governance KPIs of a window (the KPIs page); the API's `/v1/kpis` computation. */
  kpis?: (range: { from: Date; to: Date; bucket: KpiBucket }) => Promise<KpiReport>;
  /** Verifies the hash chains and checkpoints (the evidence page); the API's `/v1/audit/verify`. */
  verifyChains?: (range: {
    from?: Date;
    to?: Date;
  }) => Promise<VerifyReport & { events?: EventVerifyReport; checkpoints?: CheckpointReport }>;
  /** Builds an evidence package (the evidence page's download); the API's `/v1/evidence`. */
  buildEvidence?: (query: EvidenceQuery) => Promise<NodeJS.ReadableStream>;
  /** Sign-in with the organisation's OpenID provider (src/console/oidc-routes.ts); absent → off. */
  oidc?: OidcSignIn;
  /** Told of each grant made in the console (the request → grant latency metric, as the API's). */
  onApprovalGranted?: (approval: StoredApproval) => void;
}

/**
 * The Content-Security-Policy of console pages: scripts only with this response's nonce, no
 * inline script or style, no eval, styles and everything else from Verdict itself, no framing.
 */
export function consoleCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** The status a domain refusal (GrantError, AuditQueryError…: a `kind` and a `code`) answers. */
const STATUS_OF_KIND: Record<string, number> = {
  invalid: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
};

function refusalOf(error: unknown): { status: number; message: string } | null {
  if (typeof error !== 'object' || error === null) return null;
  const { kind, code, message } = error as { kind?: unknown; code?: unknown; message?: unknown };
  if (typeof kind !== 'string' || typeof code !== 'string' || !(kind in STATUS_OF_KIND)) return null;
  return { status: STATUS_OF_KIND[kind] as number, message: typeof message === 'string' ? message : code };
}

/**
 * The governance console, served at /console by Verdict itself (docs/console.md); registered with
 * `prefix: '/console'`, so its routes are written relative to it. Server-rendered
 * pages; every change is a plain form POST with a CSRF token; live updates over server-sent events.
 * An encapsulated plugin: its cookie, form-body, CSRF and SSE plugins, its CSP and its error pages
 * apply to the console's routes only, never to the API's.
 */
export async function consoleRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  const secureCookies = deps.config.publicUrl?.startsWith('https:') ? true : 'auto';
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  await app.register(csrf, {
    sessionPlugin: '@fastify/cookie',
    cookieKey: CSRF_COOKIE,
    cookieOpts: { path: '/console', sameSite: 'strict', httpOnly: true, secure: secureCookies },
    // The token travels in the form's `_csrf` field, or (scripted requests) the x-csrf-token header.
    getToken: (request: FastifyRequest) =>
      ((request.body as Record<string, unknown> | undefined)?._csrf as string | undefined) ??
      (request.headers['x-csrf-token'] as string | undefined),
  });
  await app.register(fastifySSE, { heartbeatInterval: 15_000 });

  // Every console route declares who may open it (src/console/console-access.ts); none may forget.
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/console')) return;
    if (route.method === 'HEAD') return;
    if (!route.config?.console)
      throw new Error(`console route ${route.url} declares no access (config.console)`);
    // Pages, not API: kept out of /openapi.json.
    route.schema = { ...route.schema, hide: true };
  });

  app.decorateRequest('consoleState', null as never);
  // NOTE: the API's headers (helmet's, set by the root onRequest hook) come first; the console's
  // CSP replaces their `default-src 'none'; form-action 'none'` for console responses only.
  app.addHook('onRequest', async (request, reply) => {
    const nonce = randomBytes(16).toString('base64');
    request.consoleState = { session: null, nonce, csrfToken: null };
    reply.header('content-security-policy', consoleCsp(nonce));
    reply.header('cache-control', 'no-store');
    reply.header('x-frame-options', 'DENY');
    // Public routes (sign-in, assets) never need the session: no database round trip for them.
    const access = request.routeOptions.config?.console;
    if (access && 'access' in access && access.access === 'public') return;
    const id = request.cookies[SESSION_COOKIE];
    if (id) request.consoleState.session = await deps.sessions.resume(id);
  });

  // After the body is parsed: unsafe methods need a same-origin request and a valid CSRF token;
  // then the route's access rule.
  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      const site = request.headers['sec-fetch-site'];
      if (site !== undefined && site !== 'same-origin' && site !== 'none') {
        return refuse(request, reply, 403, 'This form was sent from another site; nothing was changed.');
      }
      // NOTE: @fastify/csrf-protection's check answers a refusal with `reply.send(error)`; given a
      // stand-in whose `send` only reports it, the console answers with its own page instead.
      // (With the cookie secret unsigned, the check touches nothing else of the reply.)
      const refused = await new Promise<unknown>((resolve) => {
        app.csrfProtection(request, { send: resolve } as never, () => resolve(null));
      });
      if (refused) {
        return refuse(
          request,
          reply,
          403,
          'This form has expired or was not sent by the console; nothing was changed. Reload the page and try again.',
        );
      }
    }
    const access = request.routeOptions.config.console as ConsoleAccess | undefined;
    if (!access || ('access' in access && access.access === 'public')) return;
    if (!request.consoleState.session) {
      if (request.method === 'GET') {
        const next = encodeURIComponent(request.url);
        return reply.redirect(`/console/login?next=${next}`, 303);
      }
      return refuse(request, reply, 401, 'You are signed out; sign in again. Nothing was changed.');
    }
    if ('scope' in access && !can(request, access.scope)) {
      return refuse(request, reply, 403, 'Your sign-in does not allow this.');
    }
  });

  app.setErrorHandler((error, request, reply) => {
    const refusal = refusalOf(error);
    if (refusal) return refuse(request, reply, refusal.status, refusal.message);
    const status =
      (error as { statusCode?: number; status?: number }).statusCode ??
      (error as { status?: number }).status ??
      500;
    if (status === 429 || status === 503) {
      const retry = (error as { headers?: Record<string, string> }).headers?.['retry-after'];
      if (retry) reply.header('retry-after', retry);
      return refuse(request, reply, status, 'Verdict is busy; try again in a few seconds.');
    }
    if (status >= 400 && status < 500)
      return refuse(request, reply, status, 'The request was not understood.');
    request.log.error({ err: error }, 'console: request failed');
    return refuse(request, reply, 500, 'Something went wrong; nothing is lost — try again.');
  });
  app.setNotFoundHandler((request, reply) => refuse(request, reply, 404, 'There is no such page.'));

  // The live pages' feeds: the approvals inbox, and the waiver register (every waiver change
  // bumps the grants version and publishes it on the bus, for the replicas' waiver caches).
  const feed = new ChangeFeed({ bus: deps.bus, topic: APPROVALS_TOPIC });
  const waiverFeed = new ChangeFeed({ bus: deps.bus, topic: GRANTS_TOPIC });
  await feed.start();
  await waiverFeed.start();
  app.addHook('onClose', async () => {
    await feed.stop();
    await waiverFeed.stop();
  });

  await app.register(consoleAssets);
  await app.register(signInPages, { deps, secureCookies });
  await app.register(oidcPages, { deps, secureCookies });
  await app.register(approvalPages, { deps, feed });
  await app.register(waiverPages, { deps, feed: waiverFeed });
  await app.register(decisionPages, { deps });
  await app.register(policyPages, { deps });
  await app.register(playgroundPages, { deps });
  await app.register(kpiPages, { deps });
  await app.register(evidencePages, { deps });
  app.get('/', { config: { console: { access: 'public' } } }, async (_request, reply) =>
    reply.redirect('/console/approvals', 303),
  );
}

/** An error page: the message as text, the status given. */
export function refuse(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  message: string,
): FastifyReply {
  request.consoleState ??= { session: null, nonce: randomBytes(16).toString('base64'), csrfToken: null };
  return sendPage(request, reply.code(status), {
    title: status === 404 ? 'Not found' : status === 401 || status === 403 ? 'Not allowed' : 'Not done',
    main: html`<p><a href="/console">Back to the console</a></p>`,
    notice: { kind: 'error', text: message },
  });
}
