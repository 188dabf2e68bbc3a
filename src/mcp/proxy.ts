/**
 * The guard between an MCP host and an MCP server, at the JSON-RPC message level: whatever the two
 * transports are (stdio for `verdict mcp-proxy`), every message passes here. Mapped methods are
 * decided (`tools/list` filtered, `tools/call` authorised), protocol plumbing passes, and any other
 * method is refused — an MCP method the guard cannot map to a decision is denied by default.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type {
  JSONRPCErrorResponse,
  JSONRPCMessage,
  JSONRPCNotification,
  JSONRPCRequest,
  JSONRPCResultResponse,
  RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { HeldCalls } from './approval-hold.ts';
import type { McpGuard, McpTool } from './guard.ts';

/** Host → server requests that carry no decision and pass as they are. */
const PASSING_REQUESTS = new Set(['initialize', 'ping']);
/** Host → server notifications that pass. */
const PASSING_HOST_NOTIFICATIONS = new Set([
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
]);
/** Server → host notifications that pass (they inform, they do not act). */
const PASSING_SERVER_NOTIFICATIONS = new Set([
  'notifications/cancelled',
  'notifications/progress',
  'notifications/message',
  'notifications/tools/list_changed',
]);
/** Server → host requests that pass. */
const PASSING_SERVER_REQUESTS = new Set(['ping']);

/** JSON-RPC error code of a refusal by the guard (server-defined range). */
export const GUARD_REFUSED = -32001;

type Pending = { kind: 'list' } | { kind: 'call'; name: string };

// NOTE: what a message is, read from its keys. Each transport has already parsed every message it
// hands over with the SDK's JSONRPCMessageSchema (a union tried in the order request, notification,
// result, error), so its keys tell the shape; the SDK's own guards (`isJSONRPCRequest` and the
// others) validate the message with zod again, up to four times per message, on every call's path.
const isRequest = (m: JSONRPCMessage): m is JSONRPCRequest => 'method' in m && 'id' in m;
const isNotification = (m: JSONRPCMessage): m is JSONRPCNotification => 'method' in m && !('id' in m);
const isResult = (m: JSONRPCMessage): m is JSONRPCResultResponse => 'result' in m && !('method' in m);
const isError = (m: JSONRPCMessage): m is JSONRPCErrorResponse => 'error' in m && !('method' in m);

/** Runs the guard between `host` and `server` until either side closes. */
export async function proxyMcp(options: {
  host: Transport;
  server: Transport;
  guard: McpGuard;
  /** Diagnostics (never stdout: that is the protocol). */
  log?: (line: string) => void;
  /**
   * `--wait-for-approval`: hold a call denied with an approval request for up to `timeoutMs` until a
   * human decides it (src/mcp/approval-hold.ts); absent → the deny is answered at once.
   */
  waitForApproval?: { timeoutMs: number; intervalMs?: number };
}): Promise<void> {
  const { host, server, guard } = options;
  const log = options.log ?? (() => {});
  const pending = new Map<string, Pending>();
  const keyOf = (id: RequestId) => `${typeof id}:${id}`;
  const refuse = (to: Transport, id: RequestId, message: string) =>
    to.send({ jsonrpc: '2.0', id, error: { code: GUARD_REFUSED, message } }).catch((err) => log(String(err)));
  const forward = (to: Transport, message: JSONRPCMessage) =>
    to.send(message).catch((err) => log(String(err)));

  const onHostMessage = async (message: JSONRPCMessage): Promise<void> => {
    if (isRequest(message)) {
      const { id, method } = message;
      if (PASSING_REQUESTS.has(method)) return forward(server, message);
      if (method === 'tools/list') {
        pending.set(keyOf(id), { kind: 'list' });
        return forward(server, message);
      }
      if (method === 'tools/call') {
        const params = (message.params ?? {}) as { name?: unknown; arguments?: unknown; _meta?: unknown };
        if (typeof params.name !== 'string') return refuse(host, id, 'tools/call without a tool name');
        const traceparent = (params._meta as Record<string, unknown> | undefined)?.traceparent;
        const verdict = await guard.authorizeCall(
          params.name,
          params.arguments ?? {},
          typeof traceparent === 'string' ? traceparent : undefined,
        );
        if (!verdict.allow) {
          log(
            `denied tools/call ${params.name}: ${verdict.decision.violations.map((v) => v.control).join(', ')}`,
          );
          if (options.waitForApproval && verdict.decision.decided && verdict.decision.approval_request) {
            // NOTE: held off the queue: the session goes on (pings, other calls, a cancel of this one).
            const trace = typeof traceparent === 'string' ? traceparent : undefined;
            held.hold(message, params.name, params.arguments ?? {}, verdict, trace);
            return;
          }
          return forward(host, { jsonrpc: '2.0', id, result: verdict.result });
        }
        guard.recordCall();
        pending.set(keyOf(id), { kind: 'call', name: params.name });
        return forward(server, message);
      }
      log(`refused ${method}: not mapped to a decision`);
      return refuse(host, id, `denied by Verdict's MCP guard: "${method}" is not mapped to a decision`);
    }
    if (isNotification(message)) {
      if (message.method === 'notifications/cancelled') held.cancel(message.params?.requestId);
      if (PASSING_HOST_NOTIFICATIONS.has(message.method)) return forward(server, message);
      log(`dropped notification ${message.method}`);
      return;
    }
    // A response from the host answers a server request; only passing ones were forwarded.
    return forward(server, message);
  };

  const onServerMessage = async (message: JSONRPCMessage): Promise<void> => {
    if (isResult(message) || isError(message)) {
      const key = keyOf(message.id as RequestId);
      const waiting = pending.get(key);
      pending.delete(key);
      // Guardrails (issue 25): what a tool answered is judged (and redacted) before the host sees it:
      // its result, or a protocol error, whose message and data hosts show as the tool's error.
      if (waiting?.kind === 'call') {
        guard.observeResult(waiting.name);
        try {
          return forward(
            host,
            isResult(message)
              ? { ...message, result: (await guard.judgeResult(waiting.name, message.result)) as never }
              : { ...message, error: await guard.judgeError(waiting.name, message.error) },
          );
        } catch (err) {
          const what = isResult(message) ? 'result' : 'error';
          return refuse(
            host,
            message.id as RequestId,
            `Verdict could not judge the ${what}: ${(err as Error).message}`,
          );
        }
      }
      if (waiting?.kind === 'list' && isResult(message)) {
        const result = message.result as { tools?: McpTool[] };
        try {
          const tools = await guard.filterTools(Array.isArray(result.tools) ? result.tools : []);
          return forward(host, { ...message, result: { ...result, tools } });
        } catch (err) {
          return refuse(host, message.id, (err as Error).message);
        }
      }
      return forward(host, message);
    }
    if (isRequest(message)) {
      if (PASSING_SERVER_REQUESTS.has(message.method)) return forward(host, message);
      log(`refused server request ${message.method}: not mapped to a decision`);
      return refuse(
        server,
        message.id,
        `denied by Verdict's MCP guard: "${message.method}" is not mapped to a decision`,
      );
    }
    if (isNotification(message) && PASSING_SERVER_NOTIFICATIONS.has(message.method)) {
      return forward(host, message);
    }
  };

  const held = new HeldCalls({
    guard,
    waitForApproval: options.waitForApproval,
    log,
    answer: (id, result) => forward(host, { jsonrpc: '2.0', id, result: result as never }),
    progress: (params) => forward(host, { jsonrpc: '2.0', method: 'notifications/progress', params }),
    send: (message, name) => {
      guard.recordCall();
      pending.set(keyOf(message.id), { kind: 'call', name });
      return forward(server, message);
    },
  });

  // NOTE: messages of one side are handled in arrival order: a call's decision completes before the
  // next host message is looked at, so the session state each decision sees is the one before it.
  const queue = (handle: (m: JSONRPCMessage) => Promise<void>) => {
    let tail = Promise.resolve();
    return (message: JSONRPCMessage) => {
      tail = tail.then(() => handle(message)).catch((err) => log(`guard error: ${(err as Error).message}`));
    };
  };
  host.onmessage = queue(onHostMessage);
  server.onmessage = queue(onServerMessage);

  await new Promise<void>((resolve, reject) => {
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      held.cancelAll();
      Promise.allSettled([host.close(), server.close()]).then(() => resolve());
    };
    host.onclose = close;
    server.onclose = close;
    host.onerror = (err) => log(`host transport: ${err.message}`);
    server.onerror = (err) => log(`server transport: ${err.message}`);
    server
      .start()
      .then(() => host.start())
      .catch(reject);
  });
}
