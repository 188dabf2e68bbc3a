/**
 * The MCP server `verdict mcp-proxy` starts, as a Transport: a child process in a process group of
 * its own, spoken to over its stdin/stdout with the SDK's framing. Not the SDK's
 * StdioClientTransport: that one ends only the process it spawned, so a server started through a
 * shell, npm or npx leaves its own children running — and holding the host's stderr, which the host
 * waits on. This one ends the server's whole process group when the session ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** How to start the server. */
export interface ServerProcessOptions {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  /** How long the server has to exit after its stdin closes, then after SIGTERM; default 2000 ms. */
  graceMs?: number;
}

/** Sends `signal` to every process of the group `pgid`; false when none is left. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A stdio MCP server in its own process group; `close()` ends the group. */
export class ServerProcessTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private readonly options: ServerProcessOptions;
  private readonly buffer = new ReadBuffer();
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(options: ServerProcessOptions) {
    this.options = options;
  }

  /** The server's pid (its process group's id), once started. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    const { command, args, env, cwd } = this.options;
    return new Promise((resolve, reject) => {
      // NOTE: detached makes the server the leader of a new process group (and session), so that
      // close() can signal everything it started with one kill(-pgid).
      const child = spawn(command, args, { env, cwd, stdio: ['pipe', 'pipe', 'inherit'], detached: true });
      this.child = child;
      this.exited = new Promise((done) => child.once('exit', () => done()));
      child.once('error', (err) => {
        reject(err);
        this.onerror?.(err);
      });
      child.once('spawn', () => resolve());
      // 'exit', not 'close': a grandchild holding the server's stdout would delay 'close' forever.
      child.once('exit', () => {
        void this.close();
      });
      child.stdin?.on('error', (err) => this.onerror?.(err));
      child.stdout?.on('data', (chunk: Buffer) => {
        this.buffer.append(chunk);
        for (;;) {
          let message: JSONRPCMessage | null;
          try {
            message = this.buffer.readMessage();
          } catch (err) {
            this.onerror?.(err as Error);
            continue;
          }
          if (message === null) break;
          this.onmessage?.(message);
        }
      });
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || this.closing) return Promise.reject(new Error('the MCP server is not running'));
    return new Promise((resolve) => {
      if (stdin.write(serializeMessage(message))) resolve();
      else stdin.once('drain', resolve);
    });
  }

  /**
   * Ends the session: closes the server's stdin (the polite way to stop a stdio server), then
   * SIGTERM and SIGKILL to its whole group, each after the grace period; what the server started
   * and left behind is ended with it. Idempotent; calls onclose once.
   */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    const child = this.child;
    const pgid = child?.pid;
    if (child && pgid !== undefined) {
      const grace = this.options.graceMs ?? 2000;
      const exitedWithin = (ms: number) =>
        Promise.race([this.exited.then(() => true), sleep(ms, false, { ref: false })]);
      child.stdin?.end();
      if (child.exitCode === null && child.signalCode === null && !(await exitedWithin(grace))) {
        signalGroup(pgid, 'SIGTERM');
        if (!(await exitedWithin(grace))) signalGroup(pgid, 'SIGKILL');
        await exitedWithin(grace);
      }
      // The server has exited; the rest of its group follows it.
      if (signalGroup(pgid, 'SIGTERM')) {
        for (let waited = 0; waited < grace && signalGroup(pgid, 0); waited += 50) await sleep(50);
        signalGroup(pgid, 'SIGKILL');
      }
      child.stdout?.destroy();
    }
    this.buffer.clear();
    this.onclose?.();
  }
}
