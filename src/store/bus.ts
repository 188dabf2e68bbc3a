import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';

/**
 * A small "state changed" notice: which topic (`bundles`, later `exceptions`…) and the version that
 * was committed. It carries no state: a replica that gets it reloads the topic from Postgres, which
 * holds the truth, so a lost or duplicated notice only delays or repeats a reload.
 */
export interface Notice {
  topic: string;
  version: number;
  /** The replica that made the change (for logs). */
  origin?: string;
}

/** Called for every notice on a subscribed topic. Must not throw. */
export type NoticeHandler = (notice: Notice) => void;

/**
 * Publish/subscribe of notices between replicas: Redis pub/sub with REDIS_URL, in-process when
 * embedded. Publishing is best effort (replicas also poll Postgres): it never throws.
 */
export interface Bus {
  readonly kind: 'redis' | 'in-process';
  /** Sends a notice; resolves false when it could not be sent (Redis unreachable). Never rejects. */
  publish(notice: Notice): Promise<boolean>;
  /** Calls `handler` for every notice on `topic` until the returned function is called. */
  subscribe(topic: string, handler: NoticeHandler): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

function isNotice(value: unknown): value is Notice {
  if (typeof value !== 'object' || value === null) return false;
  const { topic, version } = value as Record<string, unknown>;
  return typeof topic === 'string' && typeof version === 'number' && Number.isSafeInteger(version);
}

/** The bus of one process (embedded mode, single replica, tests). */
export class InProcessBus implements Bus {
  readonly kind = 'in-process' as const;
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  async publish(notice: Notice): Promise<boolean> {
    // Delivered on a later tick, as over Redis: a publisher never runs subscribers inline.
    queueMicrotask(() => this.emitter.emit(notice.topic, { ...notice }));
    return true;
  }

  async subscribe(topic: string, handler: NoticeHandler): Promise<() => Promise<void>> {
    this.emitter.on(topic, handler);
    return async () => {
      this.emitter.off(topic, handler);
    };
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

/** Options of the Redis bus. */
export interface RedisBusOptions {
  url: string;
  /** Channel prefix; tests give each run its own. Default `verdict:`. */
  prefix?: string;
  /** How long a publish may wait for Redis before giving up (ms). Default 500. */
  publishTimeoutMs?: number;
  /** Told when a connection fails (for a log line and a metric); must not throw. */
  onError?: (err: Error) => void;
}

/**
 * Redis pub/sub. Two connections (a subscribed Redis connection cannot publish). Both reconnect
 * forever in the background; ioredis re-subscribes after a reconnect. A publish while Redis is away
 * fails fast (no offline queue) rather than delaying the activation that asked for it.
 */
export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly prefix: string;
  private readonly handlers = new Map<string, Set<NoticeHandler>>();

  constructor(options: RedisBusOptions) {
    this.prefix = options.prefix ?? 'verdict:';
    const common = {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      retryStrategy: (times: number) => Math.min(times * 200, 2_000),
    };
    this.publisher = new Redis(options.url, {
      ...common,
      enableOfflineQueue: false,
      commandTimeout: options.publishTimeoutMs ?? 500,
    });
    this.subscriber = new Redis(options.url, { ...common, enableOfflineQueue: true });
    const onError = (err: Error) => options.onError?.(err);
    this.publisher.on('error', onError);
    this.subscriber.on('error', onError);
    this.subscriber.on('message', (channel: string, message: string) => {
      const topic = channel.slice(this.prefix.length);
      let notice: unknown;
      try {
        notice = JSON.parse(message);
      } catch {
        return;
      }
      if (!isNotice(notice) || notice.topic !== topic) return;
      for (const handler of this.handlers.get(topic) ?? []) handler(notice);
    });
  }

  async publish(notice: Notice): Promise<boolean> {
    try {
      await this.publisher.publish(this.prefix + notice.topic, JSON.stringify(notice));
      return true;
    } catch {
      return false;
    }
  }

  async subscribe(topic: string, handler: NoticeHandler): Promise<() => Promise<void>> {
    let set = this.handlers.get(topic);
    if (!set) {
      set = new Set();
      this.handlers.set(topic, set);
      // NOTE: while Redis is unreachable this waits in the offline queue and completes on reconnect;
      // the caller does not wait for it (polling covers the gap).
      this.subscriber.subscribe(this.prefix + topic).catch(() => {});
    }
    set.add(handler);
    return async () => {
      set.delete(handler);
      if (set.size === 0 && this.handlers.get(topic) === set) {
        this.handlers.delete(topic);
        await this.subscriber.unsubscribe(this.prefix + topic).catch(() => {});
      }
    };
  }

  /** Resolves once the subscriber connection is ready and subscribed (tests, start-up logs). */
  async ready(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.subscriber.status === 'ready' && this.publisher.status === 'ready') return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  }

  async close(): Promise<void> {
    this.handlers.clear();
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }
}

/** The bus for a configuration: Redis when a URL is given, in-process otherwise. */
export function openBus(redisUrl: string | undefined, options: Omit<RedisBusOptions, 'url'> = {}): Bus {
  return redisUrl === undefined ? new InProcessBus() : new RedisBus({ url: redisUrl, ...options });
}
