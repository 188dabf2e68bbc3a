import type { FastifyReply, FastifyRequest } from 'fastify';
import { hasScope, type Scope } from '../auth/caller.ts';
import type { Caller } from '../decisions/types.ts';
import type { Session } from '../sessions/session-store.ts';

/**
 * Who may open a console route, declared on every route (`config: { console: … }`); a console
 * route without it is refused at registration (fail closed):
 *   - `{ access: 'public' }`: anyone (sign-in pages, assets);
 *   - `{ access: 'signed-in' }`: any live session;
 *   - `{ scope: 'approvals:grant' }` or a list (any one will do): a session whose caller has it
 *     (`admin` implies every scope, as on the API).
 */
export type ConsoleAccess =
  | { access: 'public' }
  | { access: 'signed-in' }
  | { scope: Scope | readonly Scope[] };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may open this console route (src/console/console-access.ts). */
    console?: ConsoleAccess;
  }
  interface FastifyRequest {
    /** This console request: its session (null when signed out), CSP nonce and CSRF token. */
    consoleState: ConsoleRequestState;
  }
}

/** What the console knows about one request. */
export interface ConsoleRequestState {
  session: Session | null;
  /** The CSP nonce of this response's scripts. */
  nonce: string;
  /** The CSRF token of this response's forms (made once per request, on first use). */
  csrfToken: string | null;
}

/** The cookie that carries the session id: HttpOnly, SameSite=Lax, path /console. */
export const SESSION_COOKIE = 'verdict_session';
/** The cookie that carries the CSRF secret (@fastify/csrf-protection): HttpOnly, SameSite=Strict. */
export const CSRF_COOKIE = 'verdict_csrf';

/** The signed-in person of a request that passed its access check. */
export function personOf(request: FastifyRequest): Caller {
  const session = request.consoleState.session;
  if (!session) throw new Error('personOf: this route is public; declare { access: "signed-in" } or a scope');
  return session.caller;
}

/** Whether the signed-in person has `scope` (or any one of a list); false when signed out. */
export function can(request: FastifyRequest, scope: Scope | readonly Scope[]): boolean {
  const session = request.consoleState.session;
  return session !== null && hasScope(session.caller, scope);
}

/** The request's CSRF token for a form (the same for every form of one response). */
export function csrfTokenOf(request: FastifyRequest, reply: FastifyReply): string {
  const state = request.consoleState;
  state.csrfToken ??= reply.generateCsrf();
  return state.csrfToken;
}

/** Where a sign-in may send the person back to: a console path only, never another origin. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || next.length > 512) return '/console/approvals';
  if (!/^\/console(\/[A-Za-z0-9_./%=&?-]*)?$/.test(next) || next.includes('//') || next.includes('/..')) {
    return '/console/approvals';
  }
  return next.startsWith('/console/login') || next.startsWith('/console/logout')
    ? '/console/approvals'
    : next;
}
