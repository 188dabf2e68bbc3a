import { BundleError } from '../engine/bundle.ts';
import type { PolicyLifecycle } from './lifecycle.ts';

/** The actor of uploads and activations made by the puller, in policy events. */
export const BUNDLE_SERVICE_ACTOR = 'bundle-service';

/** Options of the bundle-service puller (VERDICT_BUNDLE_URL…). */
export interface PullerOptions {
  url: string;
  /** Sent as a bearer token. */
  token: string | undefined;
  intervalMs: number;
  lifecycle: PolicyLifecycle;
  /** Told about failed polls (network, HTTP status, refused bundle). Must not throw. */
  onError?: (err: unknown) => void;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Per-request timeout. Default 30 s. */
  timeoutMs?: number;
}

/** What one poll did. */
export type PullOutcome =
  | { kind: 'not-modified' }
  | { kind: 'unchanged'; digest: string }
  | { kind: 'activated'; digest: string }
  | { kind: 'failed'; error: unknown };

/**
 * Pulls bundles from an OPA bundle server, as OPA's bundle plugin does: GET with `If-None-Match`
 * (the last ETag), 304 = nothing new. A new bundle goes through the same path as an upload (checks,
 * signature, store, event) and is activated by `bundle-service`.
 *
 * NOTE: a bundle is activated only when its bytes are new to the database. Every replica may run a
 * puller; a replica that (re)starts and fetches a bundle already stored does not re-activate it, so
 * a manual rollback is not undone by the next poll — only a new bundle on the server changes the
 * active revision.
 */
export class BundleServicePuller {
  private readonly options: PullerOptions;
  private etag: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PullOutcome> | null = null;

  constructor(options: PullerOptions) {
    this.options = options;
  }

  start(): void {
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Polls once (a call while one runs waits for it). Never rejects. */
  poll(): Promise<PullOutcome> {
    this.running ??= this.pollOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pollOnce(): Promise<PullOutcome> {
    const { url, token, lifecycle } = this.options;
    const headers: Record<string, string> = {
      accept: 'application/vnd.openpolicyagent.bundles, application/gzip',
    };
    if (token) headers.authorization = `Bearer ${token}`;
    if (this.etag) headers['if-none-match'] = this.etag;
    try {
      const response = await (this.options.fetch ?? fetch)(url, {
        headers,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
      });
      if (response.status === 304) return { kind: 'not-modified' };
      if (response.status !== 200) throw new Error(`bundle server answered ${response.status}`);
      const bytes = Buffer.from(await response.arrayBuffer());
      const etag = response.headers.get('etag');
      let uploaded: Awaited<ReturnType<PolicyLifecycle['upload']>>;
      try {
        uploaded = await lifecycle.upload(bytes, BUNDLE_SERVICE_ACTOR, {
          reason: `pulled from ${url}${etag ? ` (etag ${etag})` : ''}`,
        });
      } catch (err) {
        // A refused bundle (recorded as a refuse event) is not fetched again until the server has a
        // new one; a transient failure (database) is retried at the next poll.
        if (err instanceof BundleError) this.etag = etag;
        throw err;
      }
      this.etag = etag;
      const { revision, created } = uploaded;
      if (!created) return { kind: 'unchanged', digest: revision.digest };
      await lifecycle.activate(revision.digest, BUNDLE_SERVICE_ACTOR, {
        reason: `new bundle at ${url}${etag ? ` (etag ${etag})` : ''}`,
      });
      return { kind: 'activated', digest: revision.digest };
    } catch (error) {
      this.options.onError?.(error);
      return { kind: 'failed', error };
    }
  }
}
