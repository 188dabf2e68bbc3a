import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from './net.ts';

/** `opa run --server` on a bundle, on loopback; the real pinned OPA CLI. */
export interface OpaServer {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startOpaServer(bundlePath: string, extraArgs: string[] = []): Promise<OpaServer> {
  const port = await freePort();
  const child = spawn(
    'opa',
    [
      'run',
      '--server',
      '--addr',
      `127.0.0.1:${port}`,
      '--log-level',
      'error',
      '--bundle',
      bundlePath,
      ...extraArgs,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`opa run --server exited: ${stderr}`);
    try {
      const res = await fetch(`${url}/health?bundles`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`opa run --server did not become healthy: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    process: child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
