/**
 * Pulling from an OPA bundle server: a small HTTP server in the test serves bundles with ETags and
 * answers 304 to If-None-Match; a new bundle is uploaded and activated by `bundle-service`, the same
 * one is not re-activated (a manual rollback stands), a refused one is recorded once, and the bearer
 * token is sent.
 */
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyLifecycle } from '../../src/bundles/lifecycle.ts';
import { BundleServicePuller } from '../../src/bundles/puller.ts';
import { seedActiveRevision } from '../../src/bundles/seed.ts';
import { InProcessBus } from '../../src/store/bus.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { opaBuild, scratchDir, writePolicy } from '../support/signed-bundle.ts';

let dir: string;
let database: TestDatabase;
let server: http.Server;
let url: string;
let served: { body: Buffer; etag: string };
const requests: { ifNoneMatch: string | undefined; authorization: string | undefined }[] = [];

beforeAll(async () => {
  dir = scratchDir('puller');
  database = await createTestDatabase('puller');
  server = http.createServer((req, res) => {
    requests.push({ ifNoneMatch: req.headers['if-none-match'], authorization: req.headers.authorization });
    if (req.headers['if-none-match'] === served.etag) {
      res.writeHead(304).end();
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/vnd.openpolicyagent.bundles', etag: served.etag })
      .end(served.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundles/verdict.tar.gz`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await database.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('bundle-service puller', () => {
  it('uploads and activates a new bundle, answers 304 with nothing, and leaves a rollback alone', async () => {
    const lifecycle = new PolicyLifecycle({
      db: database.db,
      bus: new InProcessBus(),
      writerId: 'puller-test',
      defaultEntrypoint: 'verdict/decision',
      maxBytes: 32 * 1024 * 1024,
    });
    const seed = opaBuild(writePolicy(dir), path.join(dir, 'seed.tar.gz'), { revision: 'seed' });
    await seedActiveRevision(lifecycle, seed);
    const seeded = (await lifecycle.state()).state.active;
    const v1 = readFileSync(
      opaBuild(writePolicy(dir, { allow: false }), path.join(dir, 'v1.tar.gz'), { revision: 'v1' }),
    );
    served = { body: v1, etag: '"v1"' };
    const puller = new BundleServicePuller({ url, token: 's3cret', intervalMs: 60_000, lifecycle });

    const first = await puller.poll();
    expect(first.kind).toBe('activated');
    expect(requests.at(-1)).toEqual({ ifNoneMatch: undefined, authorization: 'Bearer s3cret' });
    const active = (await lifecycle.state()).state.active;
    expect((await lifecycle.get(active!))?.revision).toBe('v1');
    const [activation] = await lifecycle.events({ action: 'activate', limit: 1 });
    expect(activation).toMatchObject({ actor: 'bundle-service', from_digest: seeded, to_digest: active });

    expect((await puller.poll()).kind).toBe('not-modified');
    expect(requests.at(-1)?.ifNoneMatch).toBe('"v1"');

    // An operator rolls back; a restarted puller (no ETag) fetches the same bundle and does not undo it.
    await lifecycle.activate(seeded!, 'alice', { reason: 'roll back' });
    const restarted = new BundleServicePuller({ url, token: undefined, intervalMs: 60_000, lifecycle });
    expect((await restarted.poll()).kind).toBe('unchanged');
    expect((await lifecycle.state()).state.active).toBe(seeded);

    // A bad bundle on the server is refused once (a refuse event), not on every poll.
    served = { body: Buffer.from('garbage'), etag: '"bad"' };
    expect((await restarted.poll()).kind).toBe('failed');
    expect((await restarted.poll()).kind).toBe('not-modified');
    expect(await lifecycle.events({ action: 'refuse' })).toHaveLength(1);
    expect((await lifecycle.state()).state.active).toBe(seeded);

    // A new good bundle: activated.
    const v2 = readFileSync(
      opaBuild(
        writePolicy(dir, { allow: true, files: { 'data.json': '{"v":2}' } }),
        path.join(dir, 'v2.tar.gz'),
        { revision: 'v2' },
      ),
    );
    served = { body: v2, etag: '"v2"' };
    expect((await restarted.poll()).kind).toBe('activated');
    expect((await lifecycle.get((await lifecycle.state()).state.active!))?.revision).toBe('v2');
  });

  it('reports a server error and an unreachable server as failures', async () => {
    const lifecycle = new PolicyLifecycle({
      db: database.db,
      bus: new InProcessBus(),
      writerId: 'puller-test-2',
      defaultEntrypoint: 'verdict/decision',
      maxBytes: 1024,
    });
    const errors: unknown[] = [];
    const down = new BundleServicePuller({
      url: 'http://127.0.0.1:9/none',
      token: undefined,
      intervalMs: 60_000,
      lifecycle,
      onError: (err) => errors.push(err),
      timeoutMs: 2_000,
    });
    expect((await down.poll()).kind).toBe('failed');
    expect(errors).toHaveLength(1);
  });
});
