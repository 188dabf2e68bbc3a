import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditTrail } from '../../src/audit/audit-trail.ts';
import { ActiveBundle, loadBundleFile } from '../../src/bundles/active.ts';
import { ImpactAnalyzer } from '../../src/bundles/impact.ts';
import { RevisionStore } from '../../src/bundles/revisions.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { canonicalJson } from '../../src/decisions/canonical-json.ts';
import { evaluateDecision } from '../../src/decisions/evaluate.ts';
import { DecisionService } from '../../src/decisions/service.ts';
import { parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import { migrate } from '../../src/store/migrate.ts';
import { PGliteDatabase } from '../../src/store/pglite.ts';
import type { Database, Queryable, Sql } from '../../src/store/types.ts';
import { contractFixtureBundle, DEFAULT_BUNDLE } from '../support/bundle.ts';

// Impact analysis on the embedded database: PGlite lives in the main thread, so there the main
// thread reads the pages and the workers are sent their text (on Postgres the workers read them;
// test/bundles/impact.test.ts). The report is checked against the candidate evaluated here on
// every recorded input.

const RECORDS = 240;
let db: PGliteDatabase;
let candidateDigest: string;

/** `db` with every statement this thread runs on it logged. */
function logged(inner: Database): { db: Database; texts: string[] } {
  const texts: string[] = [];
  const log = (q: Queryable): Queryable => ({
    query: (sql: Sql) => {
      texts.push(sql.text);
      return q.query(sql);
    },
    exec: (script) => q.exec(script),
  });
  const direct = log(inner);
  return {
    texts,
    db: {
      kind: inner.kind,
      connection: inner.connection,
      query: direct.query,
      exec: direct.exec,
      transaction: (work) => inner.transaction((tx) => work(log(tx))),
      ping: () => inner.ping(),
      close: async () => {},
    } as Database,
  };
}

beforeAll(async () => {
  db = await PGliteDatabase.open(undefined);
  await migrate(db);
  const config = resolveConfig({ VERDICT_DATA_DIR: `/tmp/verdict-impact-pglite-${process.pid}` });
  // Recorded on the contract fixture (allows `read` only); the candidate is the default bundle.
  const policy = new ActiveBundle(await loadBundleFile(contractFixtureBundle()));
  const revisions = new RevisionStore(db);
  await revisions.put(policy.current().bundle);
  const candidate = parseBundle(readFileSync(DEFAULT_BUNDLE));
  await revisions.put(candidate);
  candidateDigest = candidate.digest;
  const trail = await createAuditTrail(config, db);
  const decisions = new DecisionService({ policy, recorder: trail.recorder });
  await decisions.decideMany(
    Array.from({ length: RECORDS }, (_, i) => ({
      surface: 'native' as const,
      entrypoint: 'verdict/decision',
      input: {
        subject: { type: 'agent', id: `agent-${i % 4}` },
        action: { name: i % 3 === 0 ? 'write' : 'read' },
        resource: { type: 'doc', id: `d${i % 7}` },
      },
      caller: { sub: 'c', iss: null, clientId: null, scopes: [] },
      traceId: null,
    })),
  );
  await trail.close();
}, 60_000);

afterAll(async () => db?.close());

describe('impact analysis on embedded PGlite', () => {
  it('reads the pages on the main thread and reports the flips the candidate gives on every recorded input', async () => {
    const { db: watched, texts } = logged(db);
    expect(watched.connection).toBeNull();
    const analyzer = new ImpactAnalyzer({
      db: watched,
      revisions: new RevisionStore(db),
      replicaId: 'replica-pglite',
      defaultEntrypoint: 'verdict/decision',
      workers: 2,
      pageSize: 25,
      progressMs: 50,
    });
    const begun = await analyzer.start({
      digest: candidateDigest,
      from: '2000-01-01T00:00:00Z',
      to: '2100-01-01T00:00:00Z',
      actor: 'tester',
    });
    await analyzer.settled();
    const report = await analyzer.get(begun.id);
    await analyzer.close();

    const engine = PolicyEngine.fromBundle(parseBundle(readFileSync(DEFAULT_BUNDLE)));
    const { rows } = await db.query<{ allow: boolean; input: unknown }>({
      text: 'SELECT allow, input FROM decision_log ORDER BY decided_at, id',
    });
    expect(rows).toHaveLength(RECORDS);
    let allowToDeny = 0;
    let denyToAllow = 0;
    for (const r of rows) {
      const allow = evaluateDecision(engine, 'native', 'verdict/decision', canonicalJson(r.input)).allow;
      if (r.allow && !allow) allowToDeny += 1;
      if (!r.allow && allow) denyToAllow += 1;
    }
    expect(allowToDeny).toBeGreaterThan(0);
    expect(report).toMatchObject({ state: 'done', total: RECORDS, evaluated: RECORDS, skipped: 0 });
    expect(report?.flips.map((f) => [f.direction, f.count])).toEqual([
      ['allow_to_deny', allowToDeny],
      ['deny_to_allow', denyToAllow],
    ]);
    // Ten pages of 25 (the last one short): each read here, on the main thread.
    expect(texts.filter((text) => text.includes('json_agg(page')).length).toBe(Math.ceil(RECORDS / 25));
  }, 60_000);
});
