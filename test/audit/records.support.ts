import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { AuditWriter, type AuditWriterOptions } from '../../src/audit/writer.ts';
import type { DecisionRecord } from '../../src/decisions/types.ts';
import type { Database } from '../../src/store/types.ts';

/** A plausible decision record (what DecisionService builds), numbered for assertions. */
export function decisionRecord(n: number, overrides: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    id: uuidv7(),
    decidedAt: new Date().toISOString(),
    surface: 'native',
    caller: { sub: 'svc-test', iss: null, clientId: null, scopes: ['decisions:evaluate'] },
    entrypoint: 'verdict/decision',
    bundle: { revision: 'rev-1', digest: `sha256:${'a'.repeat(64)}` },
    subjectType: 'agent',
    subjectId: `agent-${n}`,
    actionName: 'tool.call',
    resourceType: 'tool',
    resourceId: 'send_email',
    allow: n % 2 === 0,
    result: {
      allow: n % 2 === 0,
      violations: n % 2 === 0 ? [] : [{ control: 'TOOL-002', message: 'nope', severity: 'high' }],
      obligations: [],
      exceptions: [],
    },
    input: { subject: { type: 'agent', id: `agent-${n}` }, context: { z: 1, a: [1.5, 'x', null], n } },
    inputSha256: 'b'.repeat(64),
    exceptions: [],
    shadow: null,
    evalMicros: 37,
    traceId: null,
    error: null,
    ...overrides,
  };
}

export function decisionRecords(count: number, start = 0): DecisionRecord[] {
  return Array.from({ length: count }, (_, i) => decisionRecord(start + i));
}

/** An AuditWriter on `db` with small test-friendly settings and a fresh spool folder. */
export function testWriter(db: Database, overrides: Partial<AuditWriterOptions> = {}): AuditWriter {
  return new AuditWriter({
    db,
    spoolDir: mkdtempSync(path.join(tmpdir(), 'verdict-spool-')),
    mode: 'sync',
    batchMaxRecords: 100,
    batchMaxWaitMs: 2,
    queueMaxRecords: 10_000,
    enqueueTimeoutMs: 2_000,
    spoolMaxBytes: 64 * 1024 * 1024,
    retryIntervalMs: 50,
    ...overrides,
  });
}
