import crypto from 'node:crypto';
import type { StoredApproval } from './approval-store.ts';

/** Where the notifier reports (a log line and a metric per failed attempt); must not throw. */
export interface WebhookEvents {
  onAttemptFailed?(info: {
    approvalId: string;
    attempt: number;
    status: number | null;
    error?: string;
  }): void;
  onGaveUp?(info: { approvalId: string; attempts: number }): void;
  onDelivered?(info: { approvalId: string; attempts: number }): void;
}

/** The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const SIGNATURE_HEADER = 'x-verdict-signature';

/** Signs a webhook body as the receiver must check it (see docs/api.md). */
export function signWebhook(secret: string, body: string, timestamp: number): string {
  const mac = crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/** True when `header` signs `body` with `secret` (constant-time compare), within `toleranceSeconds`. */
export function verifyWebhook(
  secret: string,
  body: string,
  header: string | undefined,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match) return false;
  const timestamp = Number(match[1]);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, body, timestamp).split('v1=')[1]!, 'hex');
  return crypto.timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'));
}

/**
 * Tells a human that an agent waits for an approval: one signed JSON POST per new request, retried
 * with exponential backoff (and jitter) on a network error or a non-2xx answer. It runs beside the
 * decision, never in its way; a request whose notification failed stays listable
 * (GET /v1/approvals?state=pending).
 */
export class ApprovalWebhook {
  private readonly url: string;
  private readonly secret: string;
  private readonly publicUrl: string;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly timeoutMs: number;
  private readonly events: WebhookEvents;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stop = new AbortController();

  constructor(options: {
    url: string;
    secret: string;
    publicUrl?: string;
    attempts?: number;
    baseDelayMs?: number;
    timeoutMs?: number;
    events?: WebhookEvents;
  }) {
    this.url = options.url;
    this.secret = options.secret;
    this.publicUrl = (options.publicUrl ?? '').replace(/\/+$/, '');
    this.attempts = options.attempts ?? 6;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.events = options.events ?? {};
  }

  /** The JSON body for one request: who, what, why, and where to answer. */
  payload(approval: StoredApproval): Record<string, unknown> {
    const at = `${this.publicUrl}/v1/approvals/${encodeURIComponent(approval.id)}`;
    return {
      type: 'approval.requested',
      approval_id: approval.id,
      who: {
        agent: approval.agent,
        on_behalf_of: approval.on_behalf_of,
        requested_by: approval.requested_by,
      },
      what: {
        action: 'tool.call',
        tool: approval.tool,
        arguments_digest: approval.arguments_digest,
        // Masked as the decision record's input is (StoredApproval.arguments).
        arguments: approval.arguments,
      },
      why: { controls: approval.controls, reasons: approval.reasons, decision_id: approval.decision_id },
      requested_at: approval.requested_at,
      expires_at: approval.expires_at,
      status_url: at,
      approve_url: `${at}/approve`,
      deny_url: `${at}/deny`,
    };
  }

  /** Starts delivering; returns at once. */
  notify(approval: StoredApproval): void {
    const delivery = this.deliver(approval).finally(() => this.inFlight.delete(delivery));
    this.inFlight.add(delivery);
  }

  private async deliver(approval: StoredApproval): Promise<void> {
    const body = JSON.stringify(this.payload(approval));
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      if (this.stop.signal.aborted) return;
      let status: number | null = null;
      let error: string | undefined;
      try {
        const response = await fetch(this.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: signWebhook(this.secret, body, Math.floor(Date.now() / 1000)),
            'x-verdict-delivery': `${approval.id}:${attempt}`,
          },
          body,
          signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(this.timeoutMs)]),
        });
        status = response.status;
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) {
          this.events.onDelivered?.({ approvalId: approval.id, attempts: attempt });
          return;
        }
      } catch (err) {
        error = (err as Error).name;
      }
      this.events.onAttemptFailed?.({ approvalId: approval.id, attempt, status, error });
      if (attempt < this.attempts) {
        const delay = this.baseDelayMs * 2 ** (attempt - 1) * (0.8 + Math.random() * 0.4);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.stop.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    }
    this.events.onGaveUp?.({ approvalId: approval.id, attempts: this.attempts });
  }

  /** Stops retrying and waits for the deliveries under way to end. */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.allSettled([...this.inFlight]);
  }
}
