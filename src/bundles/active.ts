import { readFile } from 'node:fs/promises';
import { BundleError, parseBundle } from '../engine/bundle.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import { PolicyEngine } from '../engine/engine.ts';

/**
 * The policy revision that decisions are made on. Activation replaces the engine in one
 * assignment, so a decision sees either the old revision or the new one, never a mix.
 */
export class ActiveBundle implements ActivePolicy {
  private engine: PolicyEngine;
  private readonly listeners: ((engine: PolicyEngine) => void)[] = [];

  constructor(engine: PolicyEngine) {
    this.engine = engine;
  }

  current(): PolicyEngine {
    return this.engine;
  }

  activate(engine: PolicyEngine): void {
    this.engine = engine;
    for (const listener of this.listeners) listener(engine);
  }

  /** Called after every activation (metrics, logs). */
  onActivate(listener: (engine: PolicyEngine) => void): void {
    this.listeners.push(listener);
  }
}

/** Loads a bundle tarball from disk into a ready engine. */
export async function loadBundleFile(path: string): Promise<PolicyEngine> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new BundleError(`cannot read the policy bundle at ${path}: ${(err as NodeJS.ErrnoException).code}`);
  }
  return PolicyEngine.fromBundle(parseBundle(bytes));
}
