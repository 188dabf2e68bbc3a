/**
 * The notice bus: the in-process implementation and Redis pub/sub (real Redis at TEST_REDIS_URL)
 * behave the same; a Redis that is not there makes publish answer false, never throw or hang.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { type Bus, InProcessBus, type Notice, RedisBus } from '../../src/store/bus.ts';
import { freePort } from '../support/net.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const opened: Bus[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((bus) => bus.close()));
});

function received(bus: Bus, topic: string): { notices: Notice[]; next: () => Promise<Notice> } {
  const notices: Notice[] = [];
  const waiting: ((notice: Notice) => void)[] = [];
  void bus.subscribe(topic, (notice) => {
    notices.push(notice);
    waiting.shift()?.(notice);
  });
  return {
    notices,
    next: () =>
      new Promise<Notice>((resolve, reject) => {
        waiting.push(resolve);
        setTimeout(() => reject(new Error('no notice within 2 s')), 2_000);
      }),
  };
}

describe.each([
  ['in-process', (shared: InProcessBus) => shared],
  ['redis', (_shared: InProcessBus, prefix: string) => new RedisBus({ url: REDIS_URL, prefix })],
] as const)('%s bus', (_kind, open) => {
  const make = (shared = new InProcessBus(), prefix = `verdict-test-${randomBytes(4).toString('hex')}:`) => {
    const bus = open(shared, prefix);
    if (!opened.includes(bus)) opened.push(bus);
    return bus;
  };

  it('delivers a notice to every subscriber of its topic, and only of its topic', async () => {
    // Two replicas: two Redis connections on one prefix, or one in-process bus.
    const shared = new InProcessBus();
    const prefix = `verdict-test-${randomBytes(4).toString('hex')}:`;
    const a = make(shared, prefix);
    const b = make(shared, prefix);
    if (a instanceof RedisBus) expect(await a.ready()).toBe(true);
    if (b instanceof RedisBus) expect(await b.ready()).toBe(true);
    const onA = received(a, 'bundles');
    const onB = received(b, 'bundles');
    const other = received(b, 'exceptions');
    // Let the Redis subscriptions reach the server before publishing.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const [first, second] = [onA.next(), onB.next()];
    expect(await a.publish({ topic: 'bundles', version: 7, origin: 'r1' })).toBe(true);
    expect(await first).toEqual({ topic: 'bundles', version: 7, origin: 'r1' });
    expect(await second).toEqual({ topic: 'bundles', version: 7, origin: 'r1' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(other.notices).toEqual([]);
  });

  it('stops delivering after unsubscribe', async () => {
    const bus = make();
    if (bus instanceof RedisBus) expect(await bus.ready()).toBe(true);
    const notices: Notice[] = [];
    const off = await bus.subscribe('bundles', (notice) => notices.push(notice));
    const kept = received(bus, 'bundles');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await off();
    const next = kept.next();
    await bus.publish({ topic: 'bundles', version: 1 });
    await next;
    expect(notices).toEqual([]);
  });
});

describe('redis bus without Redis', () => {
  it('answers false to publish, promptly, when nothing listens at the URL', async () => {
    const bus = new RedisBus({ url: `redis://127.0.0.1:${await freePort()}`, publishTimeoutMs: 200 });
    opened.push(bus);
    const started = Date.now();
    expect(await bus.publish({ topic: 'bundles', version: 1 })).toBe(false);
    expect(Date.now() - started).toBeLessThan(1_500);
    // Subscribing does not throw or hang either.
    const off = await bus.subscribe('bundles', () => {});
    await off();
  });
});
