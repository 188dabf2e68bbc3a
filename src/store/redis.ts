import { Redis } from 'ioredis';

/** Where a Redis client reports connection trouble (a pino logger fits). */
export interface RedisLog {
  warn(fields: object, message: string): void;
}

/**
 * A Redis client for the state replicas share (rate limits, change notices). It fails fast while
 * Redis is down — a command errors at once instead of queueing — because every user of it has a
 * fallback: the rate limiter lets requests through, replicas poll Postgres. The caller owns the
 * client and closes it with `closeRedis`.
 */
export function openRedis(url: string, log?: RedisLog): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false });
  redis.on('error', (err: Error) => log?.warn({ err: err.message }, 'redis error'));
  return redis;
}

/** Closes a client politely, or drops the connection when Redis does not answer. */
export async function closeRedis(redis: Redis): Promise<void> {
  await redis.quit().catch(() => redis.disconnect());
}
