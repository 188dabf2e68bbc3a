import crypto from 'node:crypto';
import { canonicalJson } from '../decisions/canonical-json.ts';
import type { DecisionRecord } from '../decisions/types.ts';
import { GENESIS_HASH } from './chain-walk.ts';
import { DECISION_COLUMNS, type DecisionRow } from './decision-log.ts';

export { GENESIS_HASH } from './chain-walk.ts';

export type { DecisionRow } from './decision-log.ts';
export { DECISION_COLUMNS, rowFromDatabase } from './decision-log.ts';

/**
 * hash = hex(SHA-256(prev_hash ‖ RFC 8785 canonical JSON of every column but `hash`)).
 * Canonical JSON makes the digest independent of jsonb's key order.
 */
export function chainHash(row: Omit<DecisionRow, 'hash'> & { hash?: string }): string {
  return hashOf(row.prev_hash, canonicalFields(row));
}

function canonicalFields(row: Omit<DecisionRow, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...fields } = row;
  return canonicalJson(fields) ?? '';
}

/** The hashed columns in RFC 8785 key order (UTF-16 code units; the names are ASCII). */
const HASHED_COLUMNS = DECISION_COLUMNS.filter((column) => column !== 'hash').sort();
const KEY_PREFIXES = HASHED_COLUMNS.map((column) => `${JSON.stringify(column)}:`);

/**
 * The same text as canonicalFields, built column by column so that the input's canonical JSON,
 * already made for its digest (DecisionRecord.inputJson), is reused instead of serialised again:
 * the canonical form of an object is its sorted members' canonical forms, in order. Lone
 * surrogates come out escaped (`\ud800`), which the caller's UNSTORABLE check finds.
 * test/audit/chain.test.ts checks the equality.
 */
function canonicalColumns(row: Omit<DecisionRow, 'hash'>, inputJson: string | undefined): string {
  let out = '{';
  for (let i = 0; i < HASHED_COLUMNS.length; i++) {
    const column = HASHED_COLUMNS[i]!;
    const value = row[column];
    const text =
      column === 'input' && inputJson !== undefined
        ? inputJson
        : column === 'caller'
          ? canonicalCaller(value)
          : typeof value === 'object' && value !== null && !isStringArray(value)
            ? canonicalJson(value)
            : JSON.stringify(value);
    if (text === undefined) continue;
    out += out.length === 1 ? KEY_PREFIXES[i] + text : `,${KEY_PREFIXES[i]}${text}`;
  }
  return `${out}}`;
}

/** An array of strings has no keys to sort: its JSON.stringify text is already canonical. */
function isStringArray(value: object): boolean {
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== 'string') return false;
  return true;
}

// A token's caller object is reused for every request it makes (src/auth), so its canonical text
// is kept per object rather than made again for every record.
const callerTexts = new WeakMap<object, string | undefined>();

function canonicalCaller(caller: unknown): string | undefined {
  if (typeof caller !== 'object' || caller === null) return canonicalJson(caller);
  let text = callerTexts.get(caller);
  if (text === undefined) {
    text = canonicalJson(caller);
    callerTexts.set(caller, text);
  }
  return text;
}

function hashOf(prevHash: string, canonical: string): string {
  return crypto.hash('sha256', prevHash + canonical, 'hex');
}

function violatedControls(result: unknown): string[] {
  if (typeof result !== 'object' || result === null) return [];
  const violations = (result as { violations?: unknown }).violations;
  if (!Array.isArray(violations)) return [];
  return violations
    .map((v) => (typeof v === 'object' && v !== null ? (v as { control?: unknown }).control : undefined))
    .filter((control): control is string => typeof control === 'string');
}

// Postgres refuses NUL in text and jsonb, and lone UTF-16 surrogates in jsonb. A record holding one
// would fail every insert and every spool replay, so such characters become U+FFFD before hashing.
const UNSTORABLE = /\\u0000|\\ud[89a-f]/i;

function storable(value: unknown): unknown {
  if (typeof value === 'string') return value.toWellFormed().replaceAll('\u0000', '\uFFFD');
  if (Array.isArray(value)) return value.map(storable);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(k) as string, storable(v)]));
  }
  return value;
}

/** The row of `record` at a chain position; `hash` is filled in once computed. */
function rowOf(record: DecisionRecord, writerId: string, seq: number, prevHash: string): DecisionRow {
  const row: DecisionRow = {
    id: record.id,
    decided_at: new Date(record.decidedAt).toISOString(),
    writer_id: writerId,
    seq,
    prev_hash: prevHash,
    hash: '',
    surface: record.surface,
    caller_sub: record.caller.sub,
    caller: record.caller,
    entrypoint: record.entrypoint,
    bundle_revision: record.bundle.revision,
    bundle_digest: record.bundle.digest,
    subject_type: record.subjectType,
    subject_id: record.subjectId,
    action_name: record.actionName,
    resource_type: record.resourceType,
    resource_id: record.resourceId,
    allow: record.allow,
    violated_controls: violatedControls(record.result),
    result: record.result ?? null,
    input: record.input ?? null,
    input_sha256: record.inputSha256,
    exceptions: record.exceptions,
    shadow: record.shadow ?? null,
    eval_micros: Math.round(record.evalMicros),
    trace_id: record.traceId,
    error: record.error ?? null,
  };
  // NOTE: records are plain JSON data (parsed request bodies, policy results), so the row is what
  // jsonb will hand back without a JSON round trip; `append` sanitises the rare unstorable string.
  return row;
}

/**
 * One writer's hash chain: its id, the last seq and the last hash. `append` is the only thing that
 * assigns chain positions.
 */
export class Chain {
  readonly writerId: string;
  private seq = 0;
  private head = GENESIS_HASH;

  constructor(writerId: string) {
    this.writerId = writerId;
  }

  /** The last position handed out. */
  get last(): { seq: number; hash: string } {
    return { seq: this.seq, hash: this.head };
  }

  /** Gives the records the next positions of the chain, in order, and returns the rows to store. */
  append(records: DecisionRecord[]): DecisionRow[] {
    return this.appendJson(records).rows;
  }

  /**
   * Like append, and also returns each row's JSON text (the hashed canonical JSON with `hash`
   * added), which storeBatch sends as it is rather than serialising the rows again.
   */
  appendJson(records: DecisionRecord[]): { rows: DecisionRow[]; json: string[] } {
    const rows: DecisionRow[] = [];
    const json: string[] = [];
    for (const record of records) {
      let row = rowOf(record, this.writerId, this.seq + 1, this.head);
      // The canonical JSON escapes NUL and lone surrogates, so one scan of it finds them; a value
      // that is not JSON at all (NaN, a cycle) throws and takes the same repair path.
      let canonical: string | null;
      try {
        canonical = canonicalColumns(row, record.inputJson);
      } catch {
        canonical = null;
      }
      // Both unstorable forms are `\u` escapes: most rows have none, and includes() is a fast scan.
      if (canonical === null || (canonical.includes('\\u') && UNSTORABLE.test(canonical))) {
        row = storable(row) as DecisionRow;
        canonical = canonicalFields(row);
      }
      const hash = hashOf(row.prev_hash, canonical);
      this.seq += 1;
      this.head = hash;
      row.hash = hash;
      rows.push(row);
      json.push(`{"hash":"${hash}",${canonical.slice(1)}`);
    }
    return { rows, json };
  }
}
