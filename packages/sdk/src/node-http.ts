/**
 * The client's transport on Node: one request and its whole answer over `node:http(s)` with a
 * keep-alive agent, for every call that does not stream its answer and when the caller gave no
 * `fetch` of their own. On Node, `fetch` (undici's, WHATWG streams around every body) cost a
 * sequential decision 0.5–0.8 ms more than this (bench/README.md, "The SDK's transport on Node";
 * ADR 0025) — paid before every tool call by an agent, twice per call through `verdict mcp-proxy`.
 * Elsewhere (browsers, Deno, Bun) and for streamed answers, the platform's `fetch` is used.
 *
 * The node modules are imported by a computed specifier on first use: the package keeps no Node
 * types and no static Node import, so bundlers and other platforms never see one.
 */

/** What the client needs of an answer it reads whole. */
export interface Exchange {
  status: number;
  statusText: string;
  text: string;
}

export interface ExchangeRequest {
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  signal: AbortSignal;
}

export type Exchanger = (url: URL, request: ExchangeRequest) => Promise<Exchange>;

// The parts of node:http's API used here (the package carries no Node types).
interface IncomingMessage {
  statusCode?: number;
  statusMessage?: string;
  complete: boolean;
  setEncoding(encoding: 'utf8'): void;
  on(event: 'data', listener: (chunk: string) => void): void;
  on(event: 'end' | 'close', listener: () => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
}
interface ClientRequest {
  on(event: 'error', listener: (err: Error) => void): void;
  end(body?: string | Uint8Array): void;
}
interface HttpModule {
  Agent: new (options: { keepAlive: boolean }) => unknown;
  request(
    url: URL,
    options: { method: string; headers: Record<string, string>; agent: unknown; signal: AbortSignal },
    onResponse: (response: IncomingMessage) => void,
  ): ClientRequest;
}

const encoder = new TextEncoder();
let exchanger: Promise<Exchanger | undefined> | undefined;

/** Node's exchanger (one per process: the agents' sockets are shared), or undefined off Node. */
export function nodeExchanger(): Promise<Exchanger | undefined> {
  exchanger ??= load().catch(() => undefined);
  return exchanger;
}

function onNode(): boolean {
  const versions = (globalThis as { process?: { versions?: Record<string, string | undefined> } }).process
    ?.versions;
  return typeof versions?.node === 'string' && versions.bun === undefined && !('Deno' in globalThis);
}

async function load(): Promise<Exchanger | undefined> {
  if (!onNode()) return undefined;
  const specifiers = ['node:http', 'node:https'];
  const [http, https] = (await Promise.all(specifiers.map((s) => import(s)))) as [HttpModule, HttpModule];
  const plain = { module: http, agent: new http.Agent({ keepAlive: true }) };
  const secure = { module: https, agent: new https.Agent({ keepAlive: true }) };
  return (url, { method, headers, body, signal }) =>
    new Promise<Exchange>((resolve, reject) => {
      const { module, agent } = url.protocol === 'https:' ? secure : plain;
      const bytes = typeof body === 'string' ? encoder.encode(body) : body;
      const sized =
        bytes === undefined ? headers : { ...headers, 'content-length': String(bytes.byteLength) };
      const request = module.request(url, { method, headers: sized, agent, signal }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', text }),
        );
        response.on('error', reject);
        response.on('close', () => {
          if (!response.complete) reject(new Error('the connection closed before the answer ended'));
        });
      });
      request.on('error', reject);
      request.end(bytes);
    });
}
