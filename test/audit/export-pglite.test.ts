import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditTrail } from '../../src/audit/audit-trail.ts';
import { exportDecisions } from '../../src/audit/export.ts';
import { DecisionLogReader } from '../../src/audit/queries.ts';
import { DecisionReplayer } from '../../src/audit/replay.ts';
import { ActiveBundle, loadBundleFile } from '../../src/bundles/active.ts';
import { RevisionStore } from '../../src/bundles/revisions.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { DecisionService } from '../../src/decisions/service.ts';
import { migrate } from '../../src/store/migrate.ts';
import { PGliteDatabase } from '../../src/store/pglite.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

let db: PGliteDatabase;
let ids: string[];
let reader: DecisionLogReader;
let replayer: DecisionReplayer;
let revisions: RevisionStore;
let policy: ActiveBundle;

beforeAll(async () => {
  db = await PGliteDatabase.open(undefined);
  await migrate(db);
  const config = resolveConfig({ VERDICT_DATA_DIR: `/tmp/verdict-audit-pglite-${process.pid}` });
  policy = new ActiveBundle(await loadBundleFile(contractFixtureBundle()));
  revisions = new RevisionStore(db);
  expect(await revisions.put(policy.current().bundle)).toBe(true);
  const trail = await createAuditTrail(config, db);
  const decisions = new DecisionService({ policy, recorder: trail.recorder });
  const made = await decisions.decideMany(
    Array.from({ length: 250 }, (_, i) => ({
      surface: 'native' as const,
      entrypoint: 'verdict/decision',
      input: {
        subject: { type: 'user', id: `u${i % 3}` },
        action: { name: i % 2 ? 'read' : 'write' },
        resource: { type: 'doc', id: 'd' },
      },
      caller: { sub: 'c', iss: null, clientId: null, scopes: [] },
      traceId: null,
    })),
  );
  await trail.close();
  ids = made.map((d) => d.id);
  reader = new DecisionLogReader(db);
  replayer = new DecisionReplayer({ log: reader, revisions, policy });
}, 60_000);

afterAll(async () => db?.close());

const collect = async (stream: NodeJS.ReadableStream) => {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
};

describe('auditor queries on embedded PGlite', () => {
  it('stores a revision once and reads it back by digest', async () => {
    const bundle = policy.current().bundle;
    expect(await revisions.put(bundle)).toBe(false);
    const stored = await revisions.get(bundle.digest);
    expect(stored?.digest).toBe(bundle.digest);
    expect(stored?.revision).toBe(bundle.revision);
    expect(await revisions.get('sha256:nothing')).toBeNull();
  });

  it('pages, filters and gets one record', async () => {
    const seen: string[] = [];
    let after = null;
    for (;;) {
      const page = await reader.search({}, { limit: 40, after });
      seen.push(...page.items.map((item) => item.id));
      if (!page.hasMore) break;
      const last = page.items.at(-1)!;
      after = { decidedAt: last.decided_at, id: last.id };
    }
    expect(seen).toEqual(ids);
    const denies = await reader.search(
      { allow: false, control: 'FIX-001', subjectId: 'u1' },
      { limit: 1000, after: null },
    );
    expect(denies.items.length).toBe(ids.filter((_, i) => i % 2 === 0 && i % 3 === 1).length);
    expect((await reader.get(ids[7]!))?.id).toBe(ids[7]);
  });

  it('exports NDJSON and CSV', async () => {
    const ndjson = await collect(exportDecisions(reader, {}, 'ndjson', { pageSize: 60 }));
    expect(
      ndjson
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line).id),
    ).toEqual(ids);
    const csv = await collect(exportDecisions(reader, { actionName: 'read' }, 'csv', { pageSize: 60 }));
    expect(csv.trimEnd().split('\n')).toHaveLength(1 + 125);
  });

  it('replays', async () => {
    const report = await replayer.replay(ids[5]!);
    expect(report?.stored.matches).toBe(true);
    expect(report?.active.matches).toBe(true);
  });
});
