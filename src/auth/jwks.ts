import { createPublicKey, type KeyObject } from 'node:crypto';
import buildGetJwks from 'get-jwks';
import { type AsymmetricAlgorithm, algorithmOfKey } from './keys.ts';

/** Why no verification key could be found for a token. */
export type KeyLookupFailure = 'unknown_key' | 'algorithm_not_allowed' | 'key_source_unavailable';

/** Thrown by a key lookup; the auth plugin maps it to a 401 (or 503 when the JWKS is down). */
export class KeyLookupError extends Error {
  readonly reason: KeyLookupFailure;
  constructor(reason: KeyLookupFailure, message: string) {
    super(message);
    this.name = 'KeyLookupError';
    this.reason = reason;
  }
}

/** Tuning of a JWKS key store; the defaults suit an IdP that rotates keys a few times a year. */
export interface JwksOptions {
  url: string;
  algorithms: readonly AsymmetricAlgorithm[];
  /** How long a fetched key is trusted before the JWKS is asked again. */
  cacheTtlMs?: number;
  /** Fetches for unseen kids allowed at once, then one per `refetchIntervalMs` (a token bucket). */
  refetchBurst?: number;
  refetchIntervalMs?: number;
  fetchTimeoutMs?: number;
}

const GONE = new Set(['JWK_NOT_FOUND', 'NO_JWKS']);

/**
 * Verification keys from a JWKS URL, found by `kid`, through get-jwks (fetch, per-kid LRU cache).
 * Two things are added on top, both about what a hostile token can make us do:
 *  - a token bucket on fetches for kids we have never verified, so a flood of random kids costs the
 *    IdP a handful of requests, not one per token;
 *  - get-jwks falls back to a stale key whenever a refetch fails, including when the key was
 *    *removed* from the set; here the last good key is used only when the JWKS is unreachable, so
 *    a key rotated out is refused as soon as its cache entry expires.
 */
export class JwksKeyStore {
  readonly #jwks: ReturnType<typeof buildGetJwks>;
  readonly #domain: string;
  readonly #algorithms: ReadonlySet<string>;
  readonly #burst: number;
  readonly #intervalMs: number;
  #tokens: number;
  #refilledAt: number;
  readonly #now: () => number;
  readonly #fetchTimeoutMs: number;

  constructor(options: JwksOptions, now: () => number = Date.now) {
    const url = new URL(options.url);
    this.#domain = `${url.origin}/`;
    this.#algorithms = new Set(options.algorithms);
    this.#burst = options.refetchBurst ?? 3;
    this.#intervalMs = options.refetchIntervalMs ?? 10_000;
    this.#tokens = this.#burst;
    this.#now = now;
    this.#refilledAt = now();
    this.#jwks = buildGetJwks({
      max: 100,
      ttl: options.cacheTtlMs ?? 10 * 60_000,
      jwksPath: `${url.pathname}${url.search}`,
      // A JWKS that redirects elsewhere is refused rather than followed.
      fetchOptions: { redirect: 'error' },
    });
    this.#fetchTimeoutMs = options.fetchTimeoutMs ?? 5_000;
  }

  /** Keys that verified before, by cache key: served while the JWKS is unreachable. */
  readonly #lastGood = new Map<string, Record<string, unknown>>();

  #remember(cacheKey: string, jwk: Record<string, unknown>): void {
    this.#lastGood.delete(cacheKey);
    this.#lastGood.set(cacheKey, jwk);
    if (this.#lastGood.size > 100) this.#lastGood.delete(this.#lastGood.keys().next().value as string);
  }

  #takeRefetchToken(): boolean {
    const now = this.#now();
    const refill = Math.floor((now - this.#refilledAt) / this.#intervalMs);
    if (refill > 0) {
      this.#tokens = Math.min(this.#burst, this.#tokens + refill);
      this.#refilledAt += refill * this.#intervalMs;
    }
    if (this.#tokens <= 0) return false;
    this.#tokens -= 1;
    return true;
  }

  /** The public key for a token header, or a KeyLookupError. */
  async keyFor(header: { kid?: unknown; alg?: unknown }): Promise<KeyObject> {
    const { kid, alg } = header;
    if (typeof alg !== 'string' || !this.#algorithms.has(alg)) {
      throw new KeyLookupError('algorithm_not_allowed', 'the token algorithm is not accepted');
    }
    if (typeof kid !== 'string' || kid === '' || kid.length > 256) {
      throw new KeyLookupError('unknown_key', 'the token names no key (kid)');
    }
    const cacheKey = this.#jwks.generateCacheKey(alg, kid, this.#domain);
    const cached = this.#jwks.cache.get(cacheKey);
    const lastGood = this.#lastGood.get(cacheKey);
    if (cached === undefined) {
      // NOTE: a kid we verified before may always refresh; only never-seen kids spend the refetch
      // budget, so an attacker cannot starve the refresh of real keys.
      if (!lastGood && !this.#takeRefetchToken()) {
        throw new KeyLookupError('unknown_key', 'the token key (kid) is not known');
      }
      // get-jwks would answer a failed refetch from its stale cache even when the key was removed.
      this.#jwks.staleCache.delete(cacheKey);
    }
    let jwk: Record<string, unknown>;
    try {
      jwk = await withTimeout(this.#jwks.getJwk({ domain: this.#domain, alg, kid }), this.#fetchTimeoutMs);
      this.#remember(cacheKey, jwk);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (GONE.has(code)) {
        this.#lastGood.delete(cacheKey);
        throw new KeyLookupError('unknown_key', 'the token key (kid) is not known');
      }
      // The JWKS is unreachable: keep verifying with the key we had, if we had one.
      if (!lastGood) throw new KeyLookupError('key_source_unavailable', 'the key set could not be fetched');
      jwk = lastGood;
    }
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as never, format: 'jwk' });
    } catch {
      throw new KeyLookupError('unknown_key', 'the token key (kid) is not usable');
    }
    // The JWK's type decides the algorithm, not the token: an RSA key verifies RS256 only.
    if (algorithmOfKey(key) !== alg) {
      throw new KeyLookupError('algorithm_not_allowed', 'the token algorithm does not match its key');
    }
    return key;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('JWKS fetch timed out')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
