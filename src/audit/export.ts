import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import { DECISION_FACT_COLUMNS } from './decision-log.ts';
import type { DecisionFilter, DecisionLogReader, StoredDecision } from './queries.ts';
import { type SiemSource, toOcsf, toSplunkHec } from './siem.ts';

export type ExportFormat = 'ndjson' | 'csv' | 'ocsf' | 'splunk-hec';

export const EXPORT_FORMATS: readonly ExportFormat[] = ['ndjson', 'csv', 'ocsf', 'splunk-hec'];

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  // One OCSF event / one HEC event per line: what HEC's /services/collector/event and most SIEM
  // file readers take as they are.
  ocsf: 'application/x-ndjson; charset=utf-8',
  'splunk-hec': 'application/x-ndjson; charset=utf-8',
};

/** The file name extension of a download. */
export const EXPORT_EXTENSIONS: Record<ExportFormat, string> = {
  ndjson: 'ndjson',
  csv: 'csv',
  ocsf: 'ocsf.ndjson',
  'splunk-hec': 'hec.ndjson',
};

/** One record in a line-oriented format, without the newline. */
export function formatRecord(
  record: StoredDecision,
  format: Exclude<ExportFormat, 'csv'>,
  source: SiemSource,
): string {
  if (format === 'ocsf') return JSON.stringify(toOcsf(record, source));
  if (format === 'splunk-hec') return JSON.stringify(toSplunkHec(record, source));
  return JSON.stringify(record);
}

/** Verdict's version, for the SIEM formats' product fields. */
export const VERDICT_VERSION: string = (() => {
  try {
    return (
      JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return 'unknown';
  }
})();

/** The CSV columns, in order: the stored columns; JSON-valued ones as JSON text, lists joined by `;`. */
export const CSV_COLUMNS = [
  'id',
  'decided_at',
  'surface',
  'caller_sub',
  ...DECISION_FACT_COLUMNS,
  'exceptions',
  'input_sha256',
  'eval_micros',
  'trace_id',
  'writer_id',
  'seq',
  'prev_hash',
  'hash',
  'caller',
  'result',
  'input',
  'shadow',
  'error',
] as const;

function csvRow(record: StoredDecision): Record<string, string | number | boolean | null> {
  const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));
  return {
    id: record.id,
    decided_at: record.decided_at,
    surface: record.surface,
    caller_sub: record.caller_sub,
    entrypoint: record.entrypoint,
    bundle_revision: record.bundle_revision,
    bundle_digest: record.bundle_digest,
    subject_type: record.subject_type,
    subject_id: record.subject_id,
    action_name: record.action_name,
    resource_type: record.resource_type,
    resource_id: record.resource_id,
    allow: record.allow,
    violated_controls: record.violated_controls.join(';'),
    exceptions: record.exceptions.join(';'),
    input_sha256: record.input_sha256,
    eval_micros: record.eval_micros,
    trace_id: record.trace_id,
    writer_id: record.writer_id,
    seq: record.seq,
    prev_hash: record.prev_hash,
    hash: record.hash,
    caller: json(record.caller),
    result: json(record.result),
    input: json(record.input),
    shadow: json(record.shadow),
    error: json(record.error),
  };
}

/**
 * Streams every record matching `filter`, oldest first, as NDJSON (one record per line, the same
 * shape as `GET /v1/decisions/{id}`), CSV (header row, RFC 4180 quoting), OCSF API Activity events
 * or Splunk HEC events (one per line, src/audit/siem.ts).
 *
 * NOTE: memory stays at about one page whatever the size of the export: pages are read by keyset
 * queries only when the consumer pulls (highWaterMark 1 page), so a slow client slows the reads
 * instead of filling memory, and a client that goes away stops them. Once the first bytes are sent
 * an error can only end the stream early; the caller should bound the export with `to` so that it
 * ends even while decisions keep arriving.
 */
export function exportDecisions(
  log: DecisionLogReader,
  filter: DecisionFilter,
  format: ExportFormat,
  options: { pageSize?: number; source?: SiemSource } = {},
): Readable {
  const pages = log.pages(filter, options.pageSize ?? 1000);
  if (format !== 'csv') {
    const source = options.source ?? { productVersion: VERDICT_VERSION };
    return Readable.from(
      (async function* () {
        for await (const page of pages) {
          let chunk = '';
          for (const record of page) chunk += `${formatRecord(record, format, source)}\n`;
          yield chunk;
        }
      })(),
      { objectMode: false, highWaterMark: 1 },
    );
  }
  const rows = Readable.from(
    (async function* () {
      for await (const page of pages) for (const record of page) yield csvRow(record);
    })(),
    { objectMode: true, highWaterMark: 1 },
  );
  // escape_formulas: a cell starting with = + - @ is prefixed with ' so that a spreadsheet opening
  // the export does not execute a policy author's or a caller's text as a formula.
  const csv = stringify({
    header: true,
    columns: [...CSV_COLUMNS],
    escape_formulas: true,
    cast: { boolean: (value) => (value ? 'true' : 'false') },
  });
  return pipeline(rows, csv, () => {});
}
