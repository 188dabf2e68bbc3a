import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** One file the console serves, read once at start. */
interface Asset {
  type: string;
  body: Buffer;
}

/**
 * The console's static files, a fixed list: htmx and its SSE extension from their npm packages
 * (no CDN, no network at run time, no build step) and the console's stylesheet. Nothing else
 * under /console/assets answers: no path from a request ever reaches the file system.
 */
const FILES: Record<string, { from: string; type: string }> = {
  'htmx.min.js': { from: import.meta.resolve('htmx.org/dist/htmx.min.js'), type: 'text/javascript' },
  'htmx-sse.js': { from: import.meta.resolve('htmx-ext-sse/dist/sse.js'), type: 'text/javascript' },
  'console.css': { from: new URL('./assets/console.css', import.meta.url).href, type: 'text/css' },
};

function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, file] of Object.entries(FILES)) {
    assets.set(name, { type: `${file.type}; charset=utf-8`, body: readFileSync(fileURLToPath(file.from)) });
  }
  return assets;
}

/** GET /console/assets/:name — the files above, cacheable for an hour. */
export async function consoleAssets(app: FastifyInstance): Promise<void> {
  const assets = loadAssets();
  app.get<{ Params: { name: string } }>(
    '/assets/:name',
    { config: { console: { access: 'public' } } },
    async (request, reply) => {
      const asset = assets.get(request.params.name);
      if (!asset) return reply.callNotFound();
      return reply
        .header('cache-control', 'public, max-age=3600')
        .header('x-content-type-options', 'nosniff')
        .type(asset.type)
        .send(asset.body);
    },
  );
}
