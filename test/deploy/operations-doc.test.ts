import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/resolve-config.ts';
import { configVariables } from './config-variables.ts';

const doc = readFileSync(path.resolve(import.meta.dirname, '../../docs/operations.md'), 'utf8');

/** The configuration table: variable → its default column. */
function configTable(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const match of doc.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|/gm))
    rows.set(match[1]!, match[2]!.trim());
  return rows;
}

describe('docs/operations.md', () => {
  it('documents every variable resolveConfig reads, with a default and an example', () => {
    const rows = configTable();
    for (const name of configVariables()) {
      expect(rows.has(name), `${name} is missing from the configuration reference`).toBe(true);
    }
    for (const line of doc.split('\n').filter((l) => /^\| `[A-Z]/.test(l))) {
      expect(line.split('|').length, line).toBeGreaterThanOrEqual(6);
    }
  });

  it('documents no variable the service does not read', () => {
    const known = configVariables();
    for (const name of configTable().keys()) expect(known, name).toContain(name);
  });

  it('states the real defaults for numeric settings', () => {
    const rows = configTable();
    const expectations: [string, number][] = [
      ['PORT', DEFAULTS.port],
      ['VERDICT_AUDIT_BATCH_MAX', DEFAULTS.auditBatchMaxRecords],
      ['VERDICT_AUDIT_QUEUE_MAX', DEFAULTS.auditQueueMaxRecords],
      ['VERDICT_SHUTDOWN_TIMEOUT_MS', DEFAULTS.shutdownTimeoutMs],
      ['VERDICT_SHUTDOWN_DRAIN_MS', DEFAULTS.shutdownDrainMs],
      ['VERDICT_SHED_EVENT_LOOP_DELAY_MS', DEFAULTS.shedMaxEventLoopDelayMs],
      ['VERDICT_RATE_LIMIT_MAX', DEFAULTS.rateLimitMax],
      ['VERDICT_BODY_LIMIT_BYTES', DEFAULTS.bodyLimitBytes],
    ];
    for (const [name, value] of expectations) expect(rows.get(name), name).toContain(`\`${value}\``);
  });

  it('covers sizing, scaling out, workers, backup and retention, upgrade and migration', () => {
    for (const heading of [
      '## Sizing',
      '## Scaling out',
      '### Workers',
      '## Backup and retention',
      '## Upgrade and migration',
    ]) {
      expect(doc).toContain(heading);
    }
  });
});
