/**
 * The MCP guard: Verdict's decisions applied to an MCP session. It knows which MCP methods map to a
 * decision (`tools/list`, `tools/call`), builds the envelope from what it saw itself — the tools the
 * server listed (their annotations), the calls it forwarded, the results that came back — and keeps
 * the session state the tool controls read (TOOL-002 untrusted content, TOOL-006 call count). The
 * agent's own claims about its session are never asked for.
 */
import { createHash } from 'node:crypto';
import {
  type ApprovalWait,
  applyRedactions,
  type BatchItem,
  type DecisionResult,
  type VerdictClient,
  VerdictClient as VerdictClientClass,
  type VerdictClientOptions,
} from '../../packages/sdk/src/index.ts';

/** An MCP tool as `tools/list` describes it (only the fields the guard reads). */
export interface McpTool {
  name: string;
  annotations?: Record<string, unknown>;
  [key: string]: unknown;
}

/** What an MCP `tools/call` answers (the guard builds these for denials). */
export interface McpToolResult {
  content: { type: 'text'; text: string }[];
  isError?: boolean;
  _meta?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Options of a guard: who the agent is, and how to reach Verdict. */
export interface McpGuardOptions {
  /** `subject.id`: the agent this session belongs to. */
  agent: string;
  /** `subject.properties.on_behalf_of`: the user the agent acts for. */
  onBehalfOf?: string;
  /** A Verdict client, or the options to make one. */
  verdict: VerdictClient | VerdictClientOptions;
  /**
   * Context the operator sets for the whole session (e.g. `data_classification`, `user`
   * entitlements). The guard's own `session` always replaces any `session` key here.
   */
  context?: Record<string, unknown>;
  /**
   * Controls that a listing decision may report without removing the tool, because the call itself
   * can still satisfy them (its arguments, a human approval). Default TOOL-002, TOOL-003, TOOL-005.
   */
  callTimeControls?: string[];
}

const DEFAULT_CALL_TIME_CONTROLS = ['TOOL-002', 'TOOL-003', 'TOOL-005'];

/** The session state the guard keeps (and only the guard writes). */
export interface GuardSession {
  /** Tool calls forwarded to the server so far. */
  tool_calls: number;
  /** Whether a result from an open-world tool (external content) entered the session. */
  untrusted_content: boolean;
}

/** The outcome of a `tools/call` decision. */
export type CallVerdict =
  | { allow: true; decision: DecisionResult }
  | { allow: false; decision: DecisionResult; result: McpToolResult };

/** A canonical digest of a tool's arguments (the same call, retried, has the same key). */
function callKey(tool: string, args: unknown): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.keys(value as Record<string, unknown>)
          .sort()
          .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
      );
    }
    return value;
  };
  return createHash('sha256')
    .update(JSON.stringify([tool, canonical(args ?? null)]))
    .digest('hex');
}

/**
 * MCP's tool annotations as the policy reads them. Per the MCP specification `readOnlyHint` defaults to
 * false and `openWorldHint` to true, so a tool that says nothing is side-effecting and its results are
 * untrusted. Annotations come from the server and are hints: they can only add caution here, since the
 * policy's tool registry outranks `side_effects: false` claims (policies/tool.rego).
 */
function readsOnly(tool: McpTool | undefined): boolean {
  return tool?.annotations?.readOnlyHint === true;
}
function closedWorld(tool: McpTool | undefined): boolean {
  return tool?.annotations?.openWorldHint === false;
}

/** The policy decisions of one MCP session. */
export class McpGuard {
  readonly session: GuardSession = { tool_calls: 0, untrusted_content: false };
  private readonly client: VerdictClient;
  private readonly options: McpGuardOptions;
  private readonly callTimeControls: Set<string>;
  /** The tools the server listed, by name: their annotations are the resource's properties. */
  private readonly tools = new Map<string, McpTool>();
  /** Pending approval requests, by call (tool + canonical arguments). */
  private readonly approvals = new Map<string, string>();

  constructor(options: McpGuardOptions) {
    this.options = options;
    this.client =
      options.verdict instanceof VerdictClientClass
        ? options.verdict
        : new VerdictClientClass(options.verdict);
    this.callTimeControls = new Set(options.callTimeControls ?? DEFAULT_CALL_TIME_CONTROLS);
  }

  private subject() {
    return {
      type: 'agent',
      id: this.options.agent,
      ...(this.options.onBehalfOf ? { properties: { on_behalf_of: this.options.onBehalfOf } } : {}),
    };
  }

  private context(extra: Record<string, unknown> = {}) {
    return { ...this.options.context, ...extra, session: { ...this.session } };
  }

  private resource(name: string, args?: unknown) {
    const tool = this.tools.get(name);
    return {
      type: 'tool',
      id: name,
      properties: {
        ...(args !== undefined ? { arguments: args } : {}),
        annotations: tool?.annotations ?? {},
        side_effects: !readsOnly(tool),
      },
    };
  }

  /**
   * The tools of a `tools/list` answer that the agent may call, and what the model may read of them,
   * decided in ONE batch request. A tool stays listed when its listing decision (`tool.call`,
   * `listing: true`) allows, or denies only for controls the call itself can still satisfy
   * (`callTimeControls`). A tool's definition is text a model reads, and a hostile server can plant
   * instructions or leak a secret there ("tool poisoning"), so every string of every definition but
   * its `name`, `_meta` and `icons` (definitionTexts: the description, the title, each string of the
   * input and output schemas) is a part of ONE more decision in the batch: a `tool.result` of
   * resource `tools/list` with `listing: true`, whose `resource.properties.tools` names each part's
   * tool (one item, so a listing of up to the batch limit less one tools still fits one request).
   * Its `redact` obligations are applied to each definition, a `mark_untrusted` obligation (an
   * injection) marks the session untrusted, and a deny removes every tool that has a text. When
   * Verdict does not answer, it throws: nothing is listed.
   */
  async filterTools<T extends McpTool>(tools: T[]): Promise<T[]> {
    for (const tool of tools) this.tools.set(tool.name, tool);
    if (tools.length === 0) return [];
    const texts = tools.map(definitionTexts);
    const content = texts.flatMap((slots) => slots.map((t) => ({ role: 'tool', text: t.text })));
    const items: BatchItem[] = tools.map((tool) => ({ resource: this.resource(tool.name) }));
    if (content.length > 0) {
      items.push({
        action: { name: 'tool.result' },
        resource: {
          type: 'tool',
          id: 'tools/list',
          properties: { content, tools: texts.flatMap((slots, i) => slots.map(() => tools[i]!.name)) },
        },
        context: this.context({ listing: true, destination: 'model' }),
      });
    }
    const results = await this.client.decideMany(items, {
      // `listing: true`: Verdict opens no approval request for a listing deny (no call to approve).
      defaults: {
        subject: this.subject(),
        action: { name: 'tool.call' },
        context: this.context({ listing: true }),
      },
    });
    const failed = results.find((r) => !r.decided);
    if (failed && !failed.decided) {
      throw new Error(`Verdict could not decide which tools may be listed: ${failed.error.message}`);
    }
    const definitions = content.length > 0 ? results[tools.length]! : undefined;
    if (definitions?.obligations.some((o) => o.type === 'mark_untrusted'))
      this.session.untrusted_content = true;
    const redacted = definitions?.allow ? applyRedactions(content, definitions.obligations) : content;
    let part = 0;
    return tools.flatMap((tool, index) => {
      const slots = texts[index]!;
      const mine = redacted.slice(part, part + slots.length);
      part += slots.length;
      const decision = results[index]!;
      if (!decision.allow && !decision.violations.every((v) => this.callTimeControls.has(v.control)))
        return [];
      if (slots.length === 0) return [tool];
      return definitions?.allow ? [redactedAt(tool, slots, mine)] : [];
    });
  }

  /**
   * One decision before a `tools/call` is forwarded. A deny answers an MCP tool error that names the
   * violated controls; when the policy asks for a human approval, the error carries the approval
   * request, and the same call (same tool, same arguments) retried later sends its id.
   */
  async authorizeCall(name: string, args: unknown, traceparent?: string): Promise<CallVerdict> {
    const key = callKey(name, args);
    const approvalId = this.approvals.get(key);
    const decision = await this.client.decide(
      {
        subject: this.subject(),
        action: { name: 'tool.call' },
        resource: this.resource(name, args),
        context: this.context(approvalId ? { approval_id: approvalId } : {}),
      },
      traceparent ? { traceparent } : {},
    );
    if (decision.allow) {
      this.approvals.delete(key);
      return { allow: true, decision };
    }
    const approval = decision.decided ? decision.approval_request : undefined;
    if (approval) this.approvals.set(key, approval.id);
    return { allow: false, decision, result: deniedResult(name, decision) };
  }

  /**
   * Holds a denied call until a human decides its approval request (issue 24): polls the request's
   * status through the SDK (`waitForApproval`) for at most `timeoutMs`. Granted → the same call is
   * decided again (it now carries `context.approval_id`, and Verdict, not the guard, judges the
   * approval) and that decision is the answer. Denied, expired or not decided in time → the tool
   * error that says so. A status that cannot be read is tried again until the time is up.
   */
  async awaitApproval(
    name: string,
    args: unknown,
    denied: CallVerdict & { allow: false },
    options: {
      timeoutMs: number;
      intervalMs?: number;
      signal?: AbortSignal;
      traceparent?: string;
      onProgress?: (progress: { elapsedMs: number; timeoutMs: number; approvalId: string }) => void;
    },
  ): Promise<CallVerdict> {
    const request = denied.decision.decided ? denied.decision.approval_request : undefined;
    if (!request) return denied;
    const wait = await this.client.waitForApproval(request.id, {
      timeoutMs: options.timeoutMs,
      ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: ({ elapsedMs, timeoutMs }) =>
        options.onProgress?.({ elapsedMs, timeoutMs, approvalId: request.id }),
    });
    if (wait.state === 'granted') return this.authorizeCall(name, args, options.traceparent);
    // The request is over (or no longer waited for): a later retry opens or finds its own.
    this.approvals.delete(callKey(name, args));
    return {
      allow: false,
      decision: denied.decision,
      result: unapprovedResult(name, request.id, wait, options.timeoutMs),
    };
  }

  /** Counts a forwarded call (TOOL-006). */
  recordCall(): void {
    this.session.tool_calls += 1;
  }

  /**
   * Guardrails (issue 25): judges what a tool returned as a `tool.result` decision before the host
   * (and its model) sees it. Every text of the result a model may read is a part of the content:
   * its text items, the text of its embedded resources, and each string of its `structuredContent`
   * (resultTexts). The `redact` obligations are applied to them; a `mark_untrusted` obligation (a
   * prompt injection found in the result, even from a closed-world tool) marks the session
   * untrusted, so TOOL-002 applies to the next side-effecting call. A deny, or no answer from
   * Verdict, replaces the result with an MCP tool error: the host never sees text Verdict could not
   * judge.
   */
  async judgeResult(name: string, result: unknown, traceparent?: string): Promise<unknown> {
    const judged = await this.judgeTexts(name, result, resultTexts(result), traceparent);
    return judged.allow ? judged.value : deniedResult(name, judged.decision, 'result');
  }

  /**
   * The same for a JSON-RPC error a server answered a `tools/call` with: its `message` and each
   * string of its `data` are text a host may hand to the model. A deny replaces the error's message
   * and data with the guard's own (its code stays).
   */
  async judgeError(
    name: string,
    error: { code: number; message: string; data?: unknown },
    traceparent?: string,
  ): Promise<{ code: number; message: string; data?: unknown }> {
    const texts: Slot[] = [{ path: ['message'], text: error.message }];
    stringsIn(error.data, ['data'], texts);
    const judged = await this.judgeTexts(name, error, texts, traceparent);
    if (judged.allow) return judged.value as typeof error;
    const denied = deniedResult(name, judged.decision, 'result');
    return { code: error.code, message: denied.content[0]!.text, data: denied._meta };
  }

  /** One `tool.result` decision on `texts` of `value`; allowed, `value` with the redactions applied. */
  private async judgeTexts(
    name: string,
    value: unknown,
    texts: Slot[],
    traceparent?: string,
  ): Promise<{ allow: true; value: unknown } | { allow: false; decision: DecisionResult }> {
    if (texts.length === 0) return { allow: true, value };
    const content = texts.map((t) => ({ role: 'tool', text: t.text }));
    const decision = await this.client.decide(
      {
        subject: this.subject(),
        action: { name: 'tool.result' },
        resource: { type: 'tool', id: name, properties: { content } },
        context: this.context({ destination: 'model' }),
      },
      traceparent ? { traceparent } : {},
    );
    if (decision.obligations.some((o) => o.type === 'mark_untrusted')) this.session.untrusted_content = true;
    if (!decision.allow) return { allow: false, decision };
    return { allow: true, value: redactedAt(value, texts, applyRedactions(content, decision.obligations)) };
  }

  /**
   * Marks the session untrusted when a result comes from a tool that may reach the open world
   * (MCP's default, or a tool the server never listed). TOOL-002 reads it.
   */
  observeResult(name: string): void {
    if (!closedWorld(this.tools.get(name))) this.session.untrusted_content = true;
  }
}

/** The MCP tool error for a held call that no human approved: denied, expired, or not in time. */
export function unapprovedResult(
  name: string,
  approvalId: string,
  wait: ApprovalWait,
  timeoutMs: number,
): McpToolResult {
  const by = wait.approval?.decided_by ? ` by ${wait.approval.decided_by}` : '';
  const why = wait.approval?.decided_reason ? `: ${wait.approval.decided_reason}` : '';
  const text = {
    granted: `approval ${approvalId} was granted`,
    denied: `a human denied approval ${approvalId}${by}${why}`,
    expired: `approval request ${approvalId} expired before a human decided it`,
    timed_out: `no human decided approval request ${approvalId} within ${Math.round(timeoutMs / 1000)} s (it stays pending until it expires)`,
  }[wait.state];
  return {
    content: [{ type: 'text', text: `Verdict denied the call to "${name}": ${text}.` }],
    isError: true,
    _meta: { 'verdict/approval': { id: approvalId, state: wait.state } },
  };
}

type Key = string | number;

/** A text of a result (or an error) and where it is. */
type Slot = { path: Key[]; text: string };

/** How deep the guard follows JSON for its strings; deeper, the result is not judged (a refusal). */
const MAX_DEPTH = 64;

/**
 * Every text of a tool result that a model may read, with its path in the result: the text items of
 * `content`, the `text` of its embedded resources (`{type: "resource", resource: {text}}`), and each
 * string in `structuredContent` (MCP 2025-06-18: a tool's JSON output, which hosts may hand to the
 * model instead of the text). Binary items (images, audio, blobs) and object keys are not texts.
 */
function resultTexts(result: unknown): Slot[] {
  const out: Slot[] = [];
  if (!isObject(result)) return out;
  if (Array.isArray(result.content)) {
    result.content.forEach((item, index) => {
      if (!isObject(item)) return;
      if (item.type === 'text' && typeof item.text === 'string') {
        out.push({ path: ['content', index, 'text'], text: item.text });
      } else if (
        item.type === 'resource' &&
        isObject(item.resource) &&
        typeof item.resource.text === 'string'
      ) {
        out.push({ path: ['content', index, 'resource', 'text'], text: item.resource.text });
      }
    });
  }
  stringsIn(result.structuredContent, ['structuredContent'], out);
  return out;
}

/**
 * Appends every string in the JSON `value` (found at `path`) to `out`, in document order.
 * Iterative, not recursive: a hostile server's deeply nested JSON cannot overflow the stack; past
 * MAX_DEPTH levels it throws, and the caller refuses what it could not judge.
 */
function stringsIn(value: unknown, path: Key[], out: Slot[]): void {
  const stack: { value: unknown; path: Key[] }[] = [{ value, path }];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (next.path.length > path.length + MAX_DEPTH && typeof next.value === 'object' && next.value !== null) {
      throw new Error(`${path.join('.')} is nested deeper than ${MAX_DEPTH} levels`);
    }
    if (typeof next.value === 'string') out.push({ path: next.path, text: next.value });
    else if (Array.isArray(next.value)) {
      // Children are pushed last-first, so the strings come out in document order.
      for (let i = next.value.length - 1; i >= 0; i--)
        stack.push({ value: next.value[i], path: [...next.path, i] });
    } else if (isObject(next.value)) {
      const entries = Object.entries(next.value);
      for (let i = entries.length - 1; i >= 0; i--) {
        stack.push({ value: entries[i]![1], path: [...next.path, entries[i]![0]] });
      }
    }
  }
}

/**
 * Every text of a listed tool's definition a model may read, with its path in the definition: each
 * string but its `name` (how a call names it), `_meta` and `icons` (not shown to a model). Object
 * keys are not texts, as in a result.
 */
function definitionTexts(tool: McpTool): Slot[] {
  const out: Slot[] = [];
  for (const [key, value] of Object.entries(tool)) {
    if (key !== 'name' && key !== '_meta' && key !== 'icons') stringsIn(value, [key], out);
  }
  return out;
}

/** `value` with each text of `texts` replaced by its redacted form (`redacted[k]`, in the same order). */
function redactedAt<T>(value: T, texts: Slot[], redacted: readonly { text: string }[]): T {
  return texts.reduce(
    (replaced, t, k) =>
      redacted[k]!.text === t.text ? replaced : (withText(replaced, t.path, redacted[k]!.text) as T),
    value,
  );
}

/** `value` with the string at `path` replaced by `text`; what lies on the path is copied, nothing mutated. */
function withText(value: unknown, path: Key[], text: string): unknown {
  if (path.length === 0) return text;
  const [key, ...rest] = path as [Key, ...Key[]];
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<Key, unknown>;
  copy[key] = withText(copy[key], rest, text);
  return copy;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The MCP tool error for a denied call (or, `of: 'result'`, a denied tool result): its text names
 * the violated controls and any approval request.
 */
export function deniedResult(
  name: string,
  decision: DecisionResult,
  of: 'call' | 'result' = 'call',
): McpToolResult {
  const controls = [...new Set(decision.violations.map((v) => v.control))];
  const lines = [
    `Verdict denied the ${of} ${of === 'call' ? 'to' : 'of'} "${name}": ${controls.join(', ') || 'no allow'}`,
    ...decision.violations.map((v) => `- ${v.control}: ${v.message}`),
  ];
  const approval = decision.decided ? decision.approval_request : undefined;
  if (approval) {
    lines.push(
      `A human approval was requested: ${approval.id} (until ${approval.expires_at}; status ${approval.status_url}). Retry the same call once it is granted.`,
    );
  }
  if (decision.decision_id) lines.push(`decision ${decision.decision_id}`);
  return {
    content: [{ type: 'text', text: lines.join('\n') }],
    isError: true,
    // In _meta, not structuredContent: a tool's outputSchema describes its own results, not ours.
    _meta: {
      'verdict/decision': {
        decision_id: decision.decision_id,
        allow: false,
        controls,
        violations: decision.violations,
        obligations: decision.obligations,
        ...(approval ? { approval_request: approval } : {}),
      },
    },
  };
}
