/**
 * AuthZEN resource search over 10,000 candidates: the certification scenario's policy with an
 * entity catalog of `--candidates` records, 1 % of them writable by alice, so every search judges
 * every candidate and returns 1 % of them. Timed end to end through the real app (`app.inject`:
 * parse, validate, judge each candidate with the decision core, record the one search record in
 * memory, serialise); the database commit of that single record is not part of it.
 *
 *   bash scripts/run.sh --opa node bench/authzen-search.ts [--candidates 10000] [--searches 40]
 *
 * `measureSearch` is also called by bench/paths.ts (the new paths of issue 17).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MemoryRecorder } from '../src/audit/memory-recorder.ts';
import { mintToken } from '../src/auth/dev-token.ts';
import { ActiveBundle, loadBundleFile } from '../src/bundles/active.ts';
import { resolveConfig } from '../src/config/resolve-config.ts';
import { DecisionService } from '../src/decisions/service.ts';
import { buildApp } from '../src/http/app.ts';
import { createMetrics } from '../src/observability/metrics.ts';

const root = path.resolve(import.meta.dirname, '..');

/** What one run of searches measured (milliseconds per whole search). */
export interface SearchResult {
  candidates: number;
  /** Entities each search returned (1 % of the candidates). */
  returned: number;
  searches: number;
  p50Ms: number;
  p99Ms: number;
  /** p50 divided by the candidates judged. */
  microsPerCandidate: number;
  /** Search records kept (one per search, warm-up included). */
  records: number;
}

/** Builds the scenario bundle with a catalog of `candidates` records and times `searches` searches. */
export async function measureSearch(opts: { candidates: number; searches: number }): Promise<SearchResult> {
  const { candidates, searches } = opts;
  // The scenario fixture's policy with a larger catalog.
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-search-bench-'));
  try {
    const fixture = path.join(root, 'test/fixtures/policies/authzen-scenario');
    copyFileSync(path.join(fixture, 'policy.rego'), path.join(dir, 'policy.rego'));
    const records: Record<string, { status: string }> = {};
    for (let i = 0; i < candidates; i++) {
      records[`record-${String(i).padStart(6, '0')}`] = { status: i % 100 === 0 ? 'active' : 'archived' };
    }
    writeFileSync(
      path.join(dir, 'data.json'),
      JSON.stringify({
        authzen: {
          catalog: {
            subjects: { user: { alice: {}, bob: { role: 'admin' } } },
            resources: { record: records },
            actions: { record: ['read', 'write', 'delete'] },
          },
        },
        scenario: { writers: ['alice'] },
      }),
    );
    const bundlePath = path.join(dir, 'bundle.tar.gz');
    execFileSync(
      'opa',
      ['build', '-t', 'wasm', '--revision', 'search-bench', '-e', 'verdict/decision', '-o', bundlePath, dir],
      { stdio: 'pipe' },
    );

    const secret = randomBytes(32).toString('base64url');
    const config = resolveConfig({
      JWT_SECRET: secret,
      VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
      VERDICT_DATA_DIR: dir,
    });
    const policy = new ActiveBundle(await loadBundleFile(bundlePath));
    const recorder = new MemoryRecorder();
    const decisions = new DecisionService({ policy, recorder });
    const app = await buildApp({
      config,
      decisions,
      policy,
      readiness: async () => ({ ready: true, checks: {} }),
      metrics: createMetrics({ defaultMetrics: false }),
    });
    await app.ready();
    const token = mintToken(secret, { sub: 'bench', scopes: ['decisions:evaluate'], ttlSeconds: 3600 });
    const returned = Math.ceil(candidates / 100);
    const body = {
      subject: { type: 'user', id: 'alice' },
      action: { name: 'write' },
      resource: { type: 'record' },
      page: { limit: 1000 },
    };
    const search = async (): Promise<number> => {
      const started = performance.now();
      const response = await app.inject({
        method: 'POST',
        url: '/access/v1/search/resource',
        headers: { authorization: `Bearer ${token}` },
        payload: body,
      });
      const ms = performance.now() - started;
      if (response.statusCode !== 200)
        throw new Error(`search failed: ${response.statusCode} ${response.body}`);
      const { results, page } = response.json();
      if (results.length !== returned || page.next_token !== '') {
        throw new Error(`unexpected answer: ${results.length} results, next_token ${page.next_token}`);
      }
      return ms;
    };

    try {
      for (let i = 0; i < 3; i++) await search(); // warm up (JIT, catalog sort cache)
      const times: number[] = [];
      for (let i = 0; i < searches; i++) times.push(await search());
      times.sort((a, b) => a - b);
      const at = (q: number) => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)]!;
      return {
        candidates,
        returned,
        searches,
        p50Ms: at(0.5),
        p99Ms: at(0.99),
        microsPerCandidate: (at(0.5) * 1000) / candidates,
        records: recorder.records.length,
      };
    } finally {
      await app.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      candidates: { type: 'string', default: '10000' },
      searches: { type: 'string', default: '40' },
    },
  });
  const result = await measureSearch({
    candidates: Number(values.candidates),
    searches: Number(values.searches),
  });
  console.log(
    `AuthZEN resource search, ${result.candidates} candidates judged per search, ${result.returned} returned, ${result.searches} searches`,
  );
  console.log(
    `p50 ${result.p50Ms.toFixed(1)} ms  p99 ${result.p99Ms.toFixed(1)} ms  (${result.microsPerCandidate.toFixed(1)} µs per candidate at p50); ${result.records} records for ${result.searches + 3} searches`,
  );
}

if (import.meta.main) {
  main().catch((err) => {
    console.error(`authzen-search: ${err instanceof Error ? err.stack : String(err)}`);
    process.exitCode = 1;
  });
}
