import crypto from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { canonicalJson } from '../decisions/canonical-json.ts';
import type { Database, Queryable, Sql } from '../store/types.ts';
import { GENESIS_HASH } from './chain.ts';
import { type ChainBreak, ChainWalker, everyBreak, MAX_BREAKS_REPORTED } from './chain-walk.ts';
import { type KpiWindow, PERCENTILES } from './kpi-sql.ts';

/**
 * The chained log of platform events: everything that changes how decisions are made (bundle
 * uploads, activations, shadow changes, refused bundles; later waiver and approval state changes).
 * Rows are hash-chained per writer exactly like decision_log (src/audit/chain.ts): each row stores
 * its predecessor's hash, and hash = hex(SHA-256(prev_hash ‖ RFC 8785 canonical JSON of every
 * column but `hash`)), so an edited, deleted or inserted event is found by `verifyEvents`.
 */

/** What kind of thing an event is about. */
export type EventKind = 'policy' | 'exception' | 'approval';

/** An event to record. `actor` is who did it: a token's subject, `system` or `bundle-service`. */
export interface PlatformEventInput {
  kind: EventKind;
  action: string;
  actor: string;
  subject?: string | null;
  fromDigest?: string | null;
  toDigest?: string | null;
  reason?: string | null;
  payload?: Record<string, unknown>;
}

/** One platform_events row exactly as hashed (`occurred_at` as ISO-8601 with milliseconds). */
export interface EventRow {
  id: string;
  occurred_at: string;
  writer_id: string;
  seq: number;
  prev_hash: string;
  hash: string;
  kind: string;
  action: string;
  actor: string;
  subject: string | null;
  from_digest: string | null;
  to_digest: string | null;
  reason: string | null;
  payload: Record<string, unknown>;
}

/** The event hash: SHA-256 over the previous hash and the canonical JSON of the other columns. */
export function eventHash(row: Omit<EventRow, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...fields } = row;
  return crypto.hash('sha256', row.prev_hash + (canonicalJson(fields) ?? ''), 'hex');
}

/** A row as `pg` or PGlite returns it, back in the form that was hashed. */
export function eventFromDatabase(raw: Record<string, unknown>): EventRow {
  const at = raw.occurred_at;
  return {
    ...(raw as unknown as EventRow),
    occurred_at: at instanceof Date ? at.toISOString() : new Date(String(at)).toISOString(),
    seq: Number(raw.seq),
  };
}

const COLUMNS = [
  'id',
  'occurred_at',
  'writer_id',
  'seq',
  'prev_hash',
  'hash',
  'kind',
  'action',
  'actor',
  'subject',
  'from_digest',
  'to_digest',
  'reason',
  'payload',
] as const;

/** Creates `writerId`'s head row at seq 0 with the genesis hash, unless it exists. */
function seedEventHeadSql(writerId: string): Sql {
  return {
    text: `INSERT INTO platform_event_heads (writer_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (writer_id) DO NOTHING`,
    values: [writerId, GENESIS_HASH],
  };
}

/** Reads `writerId`'s head and locks its row until the transaction ends. */
function lockEventHeadSql(writerId: string): Sql {
  return {
    text: 'SELECT seq, hash FROM platform_event_heads WHERE writer_id = $1 FOR UPDATE',
    values: [writerId],
  };
}

/** Moves the head of `row`'s writer to `row`. */
function moveEventHeadSql(row: EventRow): Sql {
  return {
    text: 'UPDATE platform_event_heads SET seq = $2, hash = $3, updated_at = now() WHERE writer_id = $1',
    values: [row.writer_id, row.seq, row.hash],
  };
}

function insertEventSql(row: EventRow): Sql {
  return {
    text: `INSERT INTO platform_events (${COLUMNS.join(', ')})
           VALUES (${COLUMNS.map((column, i) => (column === 'payload' ? `$${i + 1}::jsonb` : `$${i + 1}`)).join(', ')})`,
    values: COLUMNS.map((column) => (column === 'payload' ? JSON.stringify(row.payload) : row[column])),
  };
}

/**
 * Appends one event to `writerId`'s chain inside the caller's transaction, so the event commits
 * with the change it records or not at all. The chain head is read from the database under a row
 * lock, not kept in memory: events are rare, and a rolled-back transaction then leaves no gap.
 */
export async function appendEvent(
  tx: Queryable,
  writerId: string,
  event: PlatformEventInput,
  now: Date = new Date(),
): Promise<EventRow> {
  // NOTE: the insert-then-lock makes the first append of a writer safe too: a second transaction of
  // the same writer waits on the head row until the first commits, then reads its new head.
  await tx.query(seedEventHeadSql(writerId));
  const { rows } = await tx.query<{ seq: string; hash: string }>(lockEventHeadSql(writerId));
  const head = rows[0]!;
  const row: EventRow = {
    id: uuidv7({ msecs: now.getTime() }),
    occurred_at: now.toISOString(),
    writer_id: writerId,
    seq: Number(head.seq) + 1,
    prev_hash: head.hash,
    hash: '',
    kind: event.kind,
    action: event.action,
    actor: event.actor,
    subject: event.subject ?? null,
    from_digest: event.fromDigest ?? null,
    to_digest: event.toDigest ?? null,
    reason: event.reason ?? null,
    payload: event.payload ?? {},
  };
  row.hash = eventHash(row);
  await tx.query(insertEventSql(row));
  await tx.query(moveEventHeadSql(row));
  return row;
}

/** Filters and keyset cursor for listing events, newest first. */
export interface EventQuery {
  kind?: EventKind;
  action?: string;
  subject?: string;
  /** Only events older than this one (the id of the last event of the previous page). */
  before?: string;
  limit?: number;
}

/** Events matching `query`, newest first. */
export function listEventsSql(query: EventQuery = {}): Sql {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    values.push(value);
    where.push(clause.replace('?', `$${values.length}`));
  };
  if (query.kind) add('kind = ?', query.kind);
  if (query.action) add('action = ?', query.action);
  if (query.subject) add('subject = ?', query.subject);
  if (query.before)
    add('(occurred_at, id) < (SELECT occurred_at, id FROM platform_events WHERE id = ?::uuid)', query.before);
  values.push(Math.min(Math.max(query.limit ?? 100, 1), 1000));
  return {
    text: `SELECT * FROM platform_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY occurred_at DESC, id DESC LIMIT $${values.length}`,
    values,
  };
}

/** Events, newest first. */
export async function listEvents(db: Queryable, query: EventQuery = {}): Promise<EventRow[]> {
  const { rows } = await db.query<Record<string, unknown>>(listEventsSql(query));
  return rows.map(eventFromDatabase);
}

/** Every writer's event chain head; with `started`, only the heads past seq 0. */
export function eventHeadsSql(options: { started?: boolean } = {}): Sql {
  return {
    text: `SELECT writer_id, seq, hash FROM platform_event_heads${options.started ? ' WHERE seq > 0' : ''}`,
    values: [],
  };
}

/** Chain verification's page: whole rows in chain order (writer, seq) after `after`. */
export function eventChainPageSql(after: [writerId: string, seq: number] | null, limit: number): Sql {
  return {
    text: `SELECT * FROM platform_events ${after ? 'WHERE (writer_id, seq) > ($1, $2::bigint)' : ''}
           ORDER BY writer_id, seq LIMIT ${after ? '$3' : '$1'}`,
    values: after ? [...after, limit] : [limit],
  };
}

/** The hash stored at each (writer, seq) position that holds a row (checkpoint verification). */
export function eventHashesAtSql(positions: readonly { writer_id: string; seq: number }[]): Sql {
  return {
    text: `SELECT u.writer_id, u.seq::text AS seq, t.hash
           FROM unnest($1::text[], $2::bigint[]) AS u(writer_id, seq)
           JOIN LATERAL (SELECT hash FROM platform_events t WHERE t.writer_id = u.writer_id AND t.seq = u.seq
                         ORDER BY t.id LIMIT 1) t ON true`,
    values: [positions.map((p) => p.writer_id), positions.map((p) => p.seq)],
  };
}

/** The policy events of [from, to), oldest first (an evidence package's period). */
export function policyEventsSql(from: string, to: string): Sql {
  return {
    text: `SELECT * FROM platform_events WHERE kind = 'policy' AND occurred_at >= $1 AND occurred_at < $2
           ORDER BY occurred_at, id`,
    values: [from, to],
  };
}

/** The chained histories of the waivers and approvals `subjects`, oldest first. */
export function grantEventsSql(subjects: readonly string[]): Sql {
  return {
    text: `SELECT * FROM platform_events WHERE kind IN ('exception', 'approval') AND subject = ANY($1::text[])
           ORDER BY occurred_at, id`,
    values: [subjects],
  };
}

/** How many waiver and approval events of each action happened in [from, to) (the KPIs). */
export function grantEventCountsSql(window: KpiWindow): Sql {
  return {
    text: `SELECT kind, action, count(*) AS count FROM platform_events
           WHERE kind IN ('exception', 'approval') AND occurred_at >= $1 AND occurred_at < $2
           GROUP BY kind, action`,
    values: [...window],
  };
}

/**
 * Percentiles of the time from a grant's `request` event to its first `done` event (a waiver's
 * activation, an approval's grant), over the grants whose `done` fell in the window.
 */
export function grantLatencySql(
  kind: 'exception' | 'approval',
  done: 'activate' | 'grant',
  window: KpiWindow,
): Sql {
  return {
    text: `SELECT ${PERCENTILES} FROM (
             SELECT extract(epoch FROM min(occurred_at) FILTER (WHERE action = $3)
                                      - min(occurred_at) FILTER (WHERE action = 'request'))::float8 AS seconds
             FROM platform_events WHERE kind = $4 AND subject IS NOT NULL
             GROUP BY subject
             HAVING min(occurred_at) FILTER (WHERE action = $3) >= $1
                AND min(occurred_at) FILTER (WHERE action = $3) < $2
           ) r WHERE seconds IS NOT NULL`,
    values: [...window, done, kind],
  };
}

/** Where the event chains are broken (the reasons of src/audit/chain-walk.ts). */
export interface EventBrokenLink {
  eventId: string | null;
  writerId: string;
  seq: number;
  reason: ChainBreak;
}

/** The outcome of `verifyEvents`. */
export interface EventVerifyReport {
  ok: boolean;
  checked: number;
  writers: number;
  firstBroken?: EventBrokenLink;
  /** Every break, in chain order: the first MAX_BREAKS_REPORTED of them. */
  breaks?: EventBrokenLink[];
  /** How many breaks there were in all. */
  breakCount?: number;
}

/**
 * Recomputes every writer's event chain from seq 1 (events are never dropped by retention) and
 * compares each chain's end with its head row. Reports every break (bounded); `checked` counts the
 * events verified before the first.
 */
export async function verifyEvents(db: Database | Queryable, pageSize = 1_000): Promise<EventVerifyReport> {
  const heads = await db.query<{ writer_id: string; seq: string }>(eventHeadsSql());
  const walker = new ChainWalker<EventRow>({
    hash: eventHash,
    heads: new Map(heads.rows.map((row) => [row.writer_id, Number(row.seq)])),
    toHeads: true,
  });
  const found = await everyBreak(walker, eventChainPages(db, pageSize), MAX_BREAKS_REPORTED);
  const report: EventVerifyReport = {
    ok: found.count === 0,
    checked: found.checkedBeforeFirst,
    writers: walker.chains,
  };
  if (found.count === 0) return report;
  const breaks = found.breaks.map(({ id, writerId, seq, reason }) => ({
    eventId: id,
    writerId,
    seq,
    reason,
  }));
  return { ...report, firstBroken: breaks[0], breaks, breakCount: found.count };
}

/** Every row of platform_events in chain order, in keyset pages. */
async function* eventChainPages(db: Queryable, pageSize: number): AsyncGenerator<EventRow[]> {
  let cursor: [string, number] | null = null;
  for (;;) {
    const sql = eventChainPageSql(cursor, pageSize);
    const { rows } = await db.query<Record<string, unknown>>(sql);
    const page = rows.map(eventFromDatabase);
    yield page;
    const end = page.at(-1);
    if (!end || page.length < pageSize) return;
    cursor = [end.writer_id, end.seq];
  }
}
