/**
 * Reading the decision log: search filters, keyset pagination, one record by id.
 *
 * The statements themselves are built in ./decision-log.ts, the decision log's one home for SQL.
 *
 * Order: ascending by (decided_at, id). Ids are UUIDv7 and the primary key is (decided_at, id), so
 * the pair is unique and totally ordered; a page resumes strictly after the last pair it returned,
 * which makes paging duplicate-free whatever is written meanwhile. Ascending (oldest first) is the
 * order in which records become final: a row committed before the first page was read can never
 * fall behind a cursor, so a walk from the start misses none of them (see docs/api-audit.md).
 */
import type { Queryable } from '../store/types.ts';
import {
  CONTROL_WALK_ROWS,
  type Cursor,
  controlIndexSql,
  controlWalkSql,
  type DecisionFilter,
  type DecisionRow,
  decisionByIdSql,
  searchDecisionsSql,
} from './decision-log.ts';

export type { Cursor, DecisionFilter } from './decision-log.ts';
export { CONTROL_WALK_ROWS, controlIndexSql, controlWalkSql, decisionByIdSql, searchDecisionsSql };

/**
 * One decision-log row as the auditor API shows it: the stored columns under their own names
 * (`decided_at` in ISO-8601 UTC, with microseconds when the stored time has them).
 */
export type StoredDecision = DecisionRow;

/** A search request that failed validation; `code` is stable and `parameter` names the culprit. */
export class AuditQueryError extends Error {
  override name = 'AuditQueryError';
  readonly kind = 'invalid';
  readonly code: string;
  readonly parameter: string;
  constructor(code: string, parameter: string, message: string) {
    super(message);
    this.code = code;
    this.parameter = parameter;
  }
}

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 1000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2}))?$/;
const MAX_TEXT = 256;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

function timestamp(parameter: string, raw: string): string {
  if (!TIMESTAMP.test(raw) || Number.isNaN(Date.parse(raw))) {
    throw new AuditQueryError(
      'invalid_timestamp',
      parameter,
      `${parameter} must be an ISO-8601 date or date-time with a zone (2026-11-26 or 2026-11-26T12:00:00Z)`,
    );
  }
  // A bare date is midnight UTC, whatever the database session's time zone.
  return raw.length === 10 ? `${raw}T00:00:00Z` : raw;
}

function text(parameter: string, raw: string): string {
  if (raw === '' || raw.length > MAX_TEXT) {
    throw new AuditQueryError('invalid_filter', parameter, `${parameter} must be 1..${MAX_TEXT} characters`);
  }
  return raw;
}

/** Encodes a cursor as opaque base64url text. */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.decidedAt, cursor.id])).toString('base64url');
}

/** Decodes a cursor made by `encodeCursor`; throws AuditQueryError `invalid_cursor` on anything else. */
export function decodeCursor(raw: string): Cursor {
  const invalid = new AuditQueryError('invalid_cursor', 'cursor', 'cursor is not one this API returned');
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(raw)) throw invalid;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    typeof value[0] !== 'string' ||
    typeof value[1] !== 'string' ||
    !TIMESTAMP.test(value[0]) ||
    Number.isNaN(Date.parse(value[0])) ||
    !UUID.test(value[1])
  ) {
    throw invalid;
  }
  return { decidedAt: value[0], id: value[1] };
}

/** The query-string parameters of a search, as strings (the HTTP layer's schema only bounds them). */
export interface DecisionSearchParams {
  from?: string;
  to?: string;
  caller_sub?: string;
  subject_type?: string;
  subject_id?: string;
  action?: string;
  resource_type?: string;
  resource_id?: string;
  allow?: string;
  entrypoint?: string;
  revision?: string;
  control?: string;
  /** A waiver id among the record's applied exceptions (issue 13). */
  exception?: string;
  limit?: string;
  cursor?: string;
}

/** Validates search parameters with precise messages; throws AuditQueryError. */
export function parseFilter(params: DecisionSearchParams): DecisionFilter {
  const filter: DecisionFilter = {};
  if (params.from !== undefined) filter.from = timestamp('from', params.from);
  if (params.to !== undefined) filter.to = timestamp('to', params.to);
  if (filter.from && filter.to && Date.parse(filter.from) > Date.parse(filter.to)) {
    throw new AuditQueryError('invalid_time_range', 'from', 'from must not be after to');
  }
  if (params.allow !== undefined) {
    if (params.allow !== 'true' && params.allow !== 'false') {
      throw new AuditQueryError('invalid_boolean', 'allow', 'allow must be true or false');
    }
    filter.allow = params.allow === 'true';
  }
  const texts: [keyof DecisionSearchParams, keyof DecisionFilter][] = [
    ['caller_sub', 'callerSub'],
    ['subject_type', 'subjectType'],
    ['subject_id', 'subjectId'],
    ['action', 'actionName'],
    ['resource_type', 'resourceType'],
    ['resource_id', 'resourceId'],
    ['entrypoint', 'entrypoint'],
    ['revision', 'revision'],
    ['control', 'control'],
    ['exception', 'exception'],
  ];
  for (const [param, field] of texts) {
    const raw = params[param];
    if (raw !== undefined) (filter as Record<string, unknown>)[field] = text(param, raw);
  }
  return filter;
}

/** Validates `limit` and `cursor`; throws AuditQueryError. */
export function parsePage(params: Pick<DecisionSearchParams, 'limit' | 'cursor'>): {
  limit: number;
  after: Cursor | null;
} {
  let limit = DEFAULT_PAGE_LIMIT;
  if (params.limit !== undefined) {
    limit = /^\d{1,7}$/.test(params.limit) ? Number(params.limit) : Number.NaN;
    if (!(limit >= 1 && limit <= MAX_PAGE_LIMIT)) {
      throw new AuditQueryError(
        'invalid_limit',
        'limit',
        `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`,
      );
    }
  }
  return { limit, after: params.cursor === undefined ? null : decodeCursor(params.cursor) };
}

function isoTime(text: string): string {
  // Milliseconds when the stored time has no finer part: the form the decision API answered with.
  return text.replace(/\.(\d{3})000Z$/, '.$1Z');
}

/** Maps a row of the statements above to the record shape (both drivers). */
export function toStoredDecision(row: Record<string, unknown>): StoredDecision {
  return {
    ...(row as unknown as StoredDecision),
    decided_at: isoTime(row.decided_at as string),
    seq: Number(row.seq),
    eval_micros: Number(row.eval_micros),
  };
}

/** One page of a search. */
export interface DecisionPage {
  items: StoredDecision[];
  /** Resume after the last item (null when the page is empty: keep the cursor you sent). */
  nextCursor: string | null;
  /** True when more matching records existed when the page was read. */
  hasMore: boolean;
}

/** Search and lookup over the decision log. */
export class DecisionLogReader {
  private readonly db: Queryable;
  private readonly controlWalkRows: number;

  constructor(db: Queryable, options: { controlWalkRows?: number } = {}) {
    this.db = db;
    this.controlWalkRows = options.controlWalkRows ?? CONTROL_WALK_ROWS;
  }

  async search(filter: DecisionFilter, page: { limit: number; after: Cursor | null }): Promise<DecisionPage> {
    // One row more than asked tells whether another page exists without a count.
    const rows = await this.fetch(filter, page.after, page.limit + 1);
    const hasMore = rows.length > page.limit;
    const items = rows.slice(0, page.limit).map(toStoredDecision);
    const last = items.at(-1);
    return {
      items,
      nextCursor: last ? encodeCursor({ decidedAt: last.decided_at, id: last.id }) : null,
      hasMore,
    };
  }

  /** Up to `limit` matching rows after `after`, in order. */
  private async fetch(
    filter: DecisionFilter,
    after: Cursor | null,
    limit: number,
  ): Promise<Record<string, unknown>[]> {
    if (filter.control === undefined) {
      return (await this.db.query(searchDecisionsSql(filter, after, limit))).rows;
    }
    // NOTE: no single plan serves every control. A common control is met within a few rows of the
    // time order; a rare one (or one never violated) only through the GIN index, and Postgres cannot
    // tell them apart from its statistics (an unlisted element gets a fixed small selectivity, so it
    // walks the time order: 15 s on 10 M rows). So: walk a bounded stretch first, and only if it did
    // not fill the page, continue after the last match through the index.
    const walked = (await this.db.query(controlWalkSql(filter, after, limit, this.controlWalkRows))).rows;
    if (walked.length >= limit) return walked;
    const last = walked.at(-1);
    const from = last ? { decidedAt: last.decided_at as string, id: last.id as string } : after;
    const rest = (await this.db.query(controlIndexSql(filter, from, limit - walked.length))).rows;
    return [...walked, ...rest];
  }

  async get(id: string): Promise<StoredDecision | null> {
    const { rows } = await this.db.query(decisionByIdSql(id));
    return rows[0] ? toStoredDecision(rows[0]) : null;
  }

  /**
   * Every matching record, page by page, oldest first. The generator fetches the next page only when
   * the consumer asks for it, so memory stays at one page however many records match.
   */
  async *pages(filter: DecisionFilter, pageSize = 1000): AsyncGenerator<StoredDecision[]> {
    let after: Cursor | null = null;
    for (;;) {
      const rows = await this.fetch(filter, after, pageSize);
      if (rows.length === 0) return;
      const items: StoredDecision[] = rows.map(toStoredDecision);
      yield items;
      if (rows.length < pageSize) return;
      const last: StoredDecision = items.at(-1)!;
      after = { decidedAt: last.decided_at, id: last.id };
    }
  }
}
