import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The file, under the data directory, that names the process holding the embedded store. */
export const EMBEDDED_LOCK_FILE = 'embedded-store.lock';

/** Who holds the embedded store: written by the holder, read by the CLIs. */
export interface EmbeddedLockHolder {
  pid: number;
  /** Set once the service listens: where to ask it instead of opening the store. */
  port?: number;
  host?: string;
  /** `service` (npm start) or the CLI that holds it for a moment (`audit:verify`, `migrate`). */
  role: string;
  started_at: string;
}

/** Another live process holds the embedded store; the message says which and what to do. */
export class EmbeddedStoreBusyError extends Error {
  override name = 'EmbeddedStoreBusyError';
  readonly holder: EmbeddedLockHolder;
  constructor(file: string, holder: EmbeddedLockHolder) {
    super(
      `the embedded store is in use by another process (${holder.role}, pid ${holder.pid}${
        holder.port ? `, port ${holder.port}` : ''
      }); PGlite is single-process. Stop it first, or point DATABASE_URL at Postgres. If no such process runs, delete ${file}`,
    );
    this.holder = holder;
  }
}

/** A held lock: updated once the port is known, released on shutdown. */
export interface EmbeddedLock {
  readonly file: string;
  /** Records where the holder listens, so that CLIs can ask it (atomic replace). */
  update(listening: { port: number; host: string }): void;
  /** Removes the lock file when it is still ours. Idempotent; safe in an 'exit' handler. */
  release(): void;
}

/** True while a process with this pid exists (EPERM: it exists, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parse(text: string): EmbeddedLockHolder | undefined {
  try {
    const value = JSON.parse(text) as EmbeddedLockHolder;
    return Number.isInteger(value.pid) && value.pid > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The live process holding the embedded store of `dataDir`, if any. A lock left by a dead process
 * (or by this very process's pid in an earlier life, e.g. pid 1 in a restarted container) is stale
 * and reported as no holder.
 */
export function embeddedStoreHolder(dataDir: string): EmbeddedLockHolder | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dataDir, EMBEDDED_LOCK_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const holder = parse(text);
  if (!holder || holder.pid === process.pid || !alive(holder.pid)) return undefined;
  return holder;
}

/**
 * Takes the embedded store of `dataDir` for this process, or throws EmbeddedStoreBusyError when a
 * live process holds it. A stale lock (dead holder, unreadable file) is replaced.
 *
 * Hand-written rather than a lockfile library: the lock must carry the holder's port for the CLIs,
 * and a pid check frees a crashed holder's lock at once, where mtime-based locks make a restart wait
 * out the stale period.
 * NOTE: creation is exclusive ('wx'), so of two processes starting at once only one wins; the loser
 * sees a live holder and is refused.
 */
export function acquireEmbeddedLock(dataDir: string, role: string): EmbeddedLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, EMBEDDED_LOCK_FILE);
  let holder: EmbeddedLockHolder = { pid: process.pid, role, started_at: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(holder)}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) throw err;
    }
    const current = embeddedStoreHolder(dataDir);
    if (current) throw new EmbeddedStoreBusyError(file, current);
    // Stale: remove it and try the exclusive create again.
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  let released = false;
  const ours = () => {
    try {
      return parse(readFileSync(file, 'utf8'))?.pid === process.pid;
    } catch {
      return false;
    }
  };
  return {
    file,
    update(listening) {
      if (released) return;
      holder = { ...holder, port: listening.port, host: listening.host };
      const staging = `${file}.${process.pid}.tmp`;
      writeFileSync(staging, `${JSON.stringify(holder)}\n`, { mode: 0o600 });
      renameSync(staging, file);
    },
    release() {
      if (released) return;
      released = true;
      if (!ours()) return;
      try {
        unlinkSync(file);
      } catch {
        // already gone
      }
    },
  };
}
