import { createHash, randomBytes } from 'node:crypto';
import type { Caller } from '../decisions/types.ts';
import type { Database } from '../store/types.ts';
import {
  insertLinkSql,
  insertSessionSql,
  liveSessionSql,
  pruneSessionsSql,
  revokeSessionSql,
  revokeSessionsOfSql,
  touchSessionSql,
  useLinkSql,
} from './sessions-sql.ts';

/** How long the embedded start banner's one-time sign-in link stays usable. */
export const SIGN_IN_LINK_TTL_MS = 15 * 60_000;

/** How a person signed in. */
export type SignInMethod = 'token' | 'link' | 'oidc';

/** One live session, as the console sees it. */
export interface Session {
  /** SHA-256 hex of the cookie's id: what the store keys on (the id itself is never stored). */
  idHash: string;
  caller: Caller;
  method: SignInMethod;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

/** The limits every session lives under (docs/console.md, 'Sessions'). */
export interface SessionLimits {
  /** Ends after this long without a request. */
  idleMs: number;
  /** Ends this long after sign-in, whatever happens. */
  absoluteMs: number;
}

/** A random secret as it goes into a cookie or a link: 32 bytes, base64url. */
function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

function hashOf(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function iso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString();
}

/** The caller a stored row names, frozen like a verified token's (src/auth/caller.ts). */
function callerOf(value: unknown): Caller {
  const raw = (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, unknown>;
  const scopes = Array.isArray(raw.scopes) ? raw.scopes.filter((s) => typeof s === 'string') : [];
  return Object.freeze({
    sub: String(raw.sub ?? ''),
    iss: typeof raw.iss === 'string' ? raw.iss : null,
    clientId: typeof raw.clientId === 'string' ? raw.clientId : null,
    scopes: Object.freeze(scopes) as string[],
    ...(typeof raw.principalType === 'string' ? { principalType: raw.principalType } : {}),
  });
}

/**
 * The console's sessions, server side (Postgres or embedded PGlite): a session is a random id in
 * an HttpOnly cookie and a row keyed by the id's SHA-256 (a database read leaks no usable cookie).
 * A session ends when it is revoked (sign out), idle too long, or past its absolute end; every
 * check is in the one statement that reads it, so an ended session is never returned.
 */
export class SessionStore {
  private readonly db: Database;
  private readonly clock: () => Date;
  readonly limits: SessionLimits;

  constructor(deps: { db: Database; limits: SessionLimits; clock?: () => Date }) {
    this.db = deps.db;
    this.limits = deps.limits;
    this.clock = deps.clock ?? (() => new Date());
  }

  /**
   * Opens a session for a verified caller. `notAfter` (the sign-in token's `exp`, in ms) caps the
   * absolute end: a session never outlives the credential it was opened with. Returns the cookie's id.
   */
  async open(
    caller: Caller,
    method: SignInMethod,
    notAfter?: number,
  ): Promise<{ id: string; session: Session }> {
    const now = this.clock();
    const end = Math.min(now.getTime() + this.limits.absoluteMs, notAfter ?? Number.POSITIVE_INFINITY);
    const id = newSecret();
    const session: Session = {
      idHash: hashOf(id),
      caller: callerOf(caller),
      method,
      createdAt: now.toISOString(),
      lastSeenAt: now.toISOString(),
      expiresAt: new Date(end).toISOString(),
    };
    await this.db.query(
      insertSessionSql({
        idHash: session.idHash,
        caller: session.caller,
        method,
        now: session.createdAt,
        expiresAt: session.expiresAt,
      }),
    );
    return { id, session };
  }

  /** The live session a cookie's id names (and it counts as activity), or null. */
  async resume(id: string): Promise<Session | null> {
    if (id.length < 16 || id.length > 128) return null;
    const now = this.clock();
    const idleSince = new Date(now.getTime() - this.limits.idleMs).toISOString();
    const { rows } = await this.db.query<Record<string, unknown>>(
      touchSessionSql(hashOf(id), now.toISOString(), idleSince),
    );
    const row = rows[0];
    if (!row) return null;
    return {
      idHash: row.id_hash as string,
      caller: callerOf(row.caller),
      method: row.method as SignInMethod,
      createdAt: iso(row.created_at),
      lastSeenAt: iso(row.last_seen_at),
      expiresAt: iso(row.expires_at),
    };
  }

  /**
   * Whether a session (by its id hash) is still live, without counting as activity: what a
   * long-lived stream (the live inbox) checks before each push, so that sign-out, expiry and
   * the idle limit end it too.
   */
  async isLive(idHash: string): Promise<boolean> {
    const now = this.clock();
    const idleSince = new Date(now.getTime() - this.limits.idleMs).toISOString();
    const { rows } = await this.db.query(liveSessionSql(idHash, now.toISOString(), idleSince));
    return rows.length > 0;
  }

  /** Ends the session a cookie's id names (sign out). */
  async revoke(id: string): Promise<void> {
    await this.db.query(revokeSessionSql(hashOf(id), this.clock().toISOString()));
  }

  /** Ends every session of one person (an operator's lever). */
  async revokeAllOf(sub: string, iss: string | null): Promise<void> {
    await this.db.query(revokeSessionsOfSql(sub, iss, this.clock().toISOString()));
  }

  /** A one-time sign-in link's code for `caller`, valid `ttlMs` (the embedded start banner). */
  async createLink(caller: Caller, ttlMs: number): Promise<string> {
    const now = this.clock();
    const code = newSecret();
    await this.db.query(
      insertLinkSql(
        hashOf(code),
        callerOf(caller),
        now.toISOString(),
        new Date(now.getTime() + ttlMs).toISOString(),
      ),
    );
    return code;
  }

  /** Uses a link's code once: the caller it signs in, or null (unknown, used or expired). */
  async useLink(code: string): Promise<Caller | null> {
    if (code.length < 16 || code.length > 128) return null;
    const { rows } = await this.db.query<Record<string, unknown>>(
      useLinkSql(hashOf(code), this.clock().toISOString()),
    );
    const caller = rows[0] ? callerOf(rows[0].caller) : null;
    return caller && caller.sub !== '' ? caller : null;
  }

  /**
   * Keeps a started sign-in's secrets (OIDC state, PKCE verifier, nonce…) server side as a one-time
   * item valid `ttlMs`; answers the id the browser carries (in a cookie) to its callback. Stored
   * beside the one-time links, under a separate hash domain: an item's id is never a link's code.
   */
  async keepPending(item: Record<string, string>, ttlMs: number): Promise<string> {
    const now = this.clock();
    const id = newSecret();
    await this.db.query(
      insertLinkSql(
        hashOf(`pending:${id}`),
        { pending: item },
        now.toISOString(),
        new Date(now.getTime() + ttlMs).toISOString(),
      ),
    );
    return id;
  }

  /** Takes a pending item once: what `keepPending` kept, or null (unknown, taken or expired). */
  async takePending(id: string): Promise<Record<string, string> | null> {
    if (id.length < 16 || id.length > 128) return null;
    const { rows } = await this.db.query<Record<string, unknown>>(
      useLinkSql(hashOf(`pending:${id}`), this.clock().toISOString()),
    );
    const stored = rows[0]?.caller;
    const raw = (typeof stored === 'string' ? JSON.parse(stored) : stored) as
      | { pending?: unknown }
      | undefined;
    const pending = raw?.pending;
    if (typeof pending !== 'object' || pending === null) return null;
    return Object.fromEntries(
      Object.entries(pending).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    );
  }

  /** Deletes what ended more than a day ago. */
  async prune(): Promise<void> {
    await this.db.query(pruneSessionsSql(new Date(this.clock().getTime() - 86_400_000).toISOString()));
  }
}
