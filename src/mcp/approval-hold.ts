/**
 * `verdict mcp-proxy --wait-for-approval` (issue 24): a `tools/call` denied with an approval request
 * is held — not answered — while a human decides it. The host hears MCP progress notifications
 * meanwhile (when its request carried a `progressToken`); granted, the call is decided again with
 * `context.approval_id` and, allowed, forwarded to the server as the host sent it; denied, expired,
 * not decided in time, or cancelled by the host, it is answered with the tool error that says so.
 */
import type { JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { CallVerdict, McpGuard } from './guard.ts';

/** What the proxy gives the held calls: its guard, and how to answer, notify and forward. */
export interface HeldCallsDeps {
  guard: McpGuard;
  waitForApproval: { timeoutMs: number; intervalMs?: number } | undefined;
  log: (line: string) => void;
  /** Answers the host's request `id` with a `tools/call` result. */
  answer: (id: RequestId, result: unknown) => Promise<void>;
  /** Sends the host a `notifications/progress`. */
  progress: (params: {
    progressToken: string | number;
    progress: number;
    total: number;
    message: string;
  }) => Promise<void>;
  /** Forwards the (now allowed) request to the server. */
  send: (message: JSONRPCRequest, name: string) => Promise<void>;
}

/** The calls held for a human, by JSON-RPC request id. */
export class HeldCalls {
  private readonly deps: HeldCallsDeps;
  private readonly waiting = new Map<string, AbortController>();

  constructor(deps: HeldCallsDeps) {
    this.deps = deps;
  }

  /** Holds `message` (denied as `verdict`) until its approval is decided; returns at once. */
  hold(
    message: JSONRPCRequest,
    name: string,
    args: unknown,
    verdict: CallVerdict & { allow: false },
    traceparent: string | undefined,
  ): void {
    const { guard, waitForApproval, log } = this.deps;
    if (!waitForApproval) return void this.deps.answer(message.id, verdict.result);
    const key = `${typeof message.id}:${message.id}`;
    const abort = new AbortController();
    this.waiting.set(key, abort);
    const token = (message.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
    const progressToken = typeof token === 'string' || typeof token === 'number' ? token : undefined;
    const approvalId = verdict.decision.decided ? verdict.decision.approval_request?.id : undefined;
    log(`holding tools/call ${name} for approval ${approvalId}`);
    guard
      .awaitApproval(name, args, verdict, {
        timeoutMs: waitForApproval.timeoutMs,
        ...(waitForApproval.intervalMs !== undefined ? { intervalMs: waitForApproval.intervalMs } : {}),
        signal: abort.signal,
        ...(traceparent ? { traceparent } : {}),
        onProgress: ({ elapsedMs, timeoutMs }) => {
          if (progressToken === undefined) return;
          void this.deps.progress({
            progressToken,
            progress: elapsedMs,
            total: timeoutMs,
            message: `waiting for a human to approve ${approvalId} (${Math.round(elapsedMs / 1000)} s of ${Math.round(timeoutMs / 1000)} s)`,
          });
        },
      })
      .then(
        (decided) => {
          if (abort.signal.aborted) return;
          if (decided.allow) {
            log(`approved tools/call ${name} (${approvalId}): forwarded`);
            return this.deps.send(message, name);
          }
          log(`tools/call ${name} not approved (${approvalId})`);
          return this.deps.answer(message.id, decided.result);
        },
        (err: unknown) => {
          // Cancelled by the host (it expects no answer) or the session closed.
          if (abort.signal.aborted) return;
          log(`waiting for approval ${approvalId} failed: ${(err as Error)?.message ?? err}`);
          return this.deps.answer(message.id, verdict.result);
        },
      )
      .finally(() => this.waiting.delete(key));
  }

  /** The host cancelled request `requestId`: stop waiting, answer nothing (MCP cancellation). */
  cancel(requestId: unknown): void {
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
    this.waiting.get(`${typeof requestId}:${requestId}`)?.abort(new Error('cancelled by the host'));
  }

  /** The session closed: stop every wait. */
  cancelAll(): void {
    for (const abort of this.waiting.values()) abort.abort(new Error('the session closed'));
  }
}
