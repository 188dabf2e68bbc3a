import crypto from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { canonicalJson } from '../decisions/canonical-json.ts';
import type { Database, Queryable, Sql } from '../store/types.ts';
import { GENESIS_HASH } from './chain.ts';

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
  await tx.query({
    text: `INSERT INTO platform_event_heads (writer_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (writer_id) DO NOTHING`,
    values: [writerId, GENESIS_HASH],
  });
  const { rows } = await tx.query<{ seq: string; hash: string }>({
    text: 'SELECT seq, hash FROM platform_event_heads WHERE writer_id = $1 FOR UPDATE',
    values: [writerId],
  });
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
  await tx.query({
    text: 'UPDATE platform_event_heads SET seq = $2, hash = $3, updated_at = now() WHERE writer_id = $1',
    values: [writerId, row.seq, row.hash],
  });
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

/** Events, newest first. */
export async function listEvents(db: Queryable, query: EventQuery = {}): Promise<EventRow[]> {
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
  const { rows } = await db.query<Record<string, unknown>>({
    text: `SELECT * FROM platform_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY occurred_at DESC, id DESC LIMIT $${values.length}`,
    values,
  });
  return rows.map(eventFromDatabase);
}

/** Where the event chains are broken (the reasons of src/audit/verify.ts). */
export interface EventBrokenLink {
  eventId: string | null;
  writerId: string;
  seq: number;
  reason: 'edited' | 'deleted' | 'inserted' | 'reordered' | 'tail_truncated';
}

/** The outcome of `verifyEvents`. */
export interface EventVerifyReport {
  ok: boolean;
  checked: number;
  writers: number;
  firstBroken?: EventBrokenLink;
}

/**
 * Recomputes every writer's event chain from seq 1 (events are never dropped by retention) and
 * compares each chain's end with its head row. Stops at the first break.
 */
export async function verifyEvents(db: Database | Queryable, pageSize = 1_000): Promise<EventVerifyReport> {
  const heads = new Map<string, { seq: number; hash: string }>();
  for (const row of (
    await db.query<{ writer_id: string; seq: string; hash: string }>({
      text: 'SELECT writer_id, seq, hash FROM platform_event_heads',
    })
  ).rows) {
    heads.set(row.writer_id, { seq: Number(row.seq), hash: row.hash });
  }
  let checked = 0;
  const seen = new Set<string>();
  let writer: string | null = null;
  let expected = 1;
  let prevHash = GENESIS_HASH;
  let last: { id: string; seq: number } | null = null;
  const broken = (firstBroken: EventBrokenLink): EventVerifyReport => ({
    ok: false,
    checked,
    writers: seen.size,
    firstBroken,
  });
  const tail = (writerId: string): EventBrokenLink | null => {
    const head = heads.get(writerId);
    if (head && (last?.seq ?? 0) < head.seq) {
      return { eventId: last?.id ?? null, writerId, seq: last?.seq ?? 0, reason: 'tail_truncated' };
    }
    return null;
  };
  let cursor: [string, number] | null = null;
  for (;;) {
    const { rows } = await db.query<Record<string, unknown>>({
      text: `SELECT * FROM platform_events ${cursor ? 'WHERE (writer_id, seq) > ($1, $2::bigint)' : ''}
             ORDER BY writer_id, seq LIMIT ${cursor ? '$3' : '$1'}`,
      values: cursor ? [...cursor, pageSize] : [pageSize],
    });
    for (const raw of rows) {
      const row = eventFromDatabase(raw);
      if (row.writer_id !== writer) {
        if (writer !== null) {
          const cut = tail(writer);
          if (cut) return broken(cut);
        }
        writer = row.writer_id;
        seen.add(writer);
        expected = 1;
        prevHash = GENESIS_HASH;
        last = null;
        if (!heads.has(writer))
          return broken({ eventId: row.id, writerId: writer, seq: row.seq, reason: 'inserted' });
      }
      const at = { eventId: row.id, writerId: writer, seq: row.seq };
      if (row.seq < expected) return broken({ ...at, reason: 'inserted' });
      if (row.seq > expected) return broken({ ...at, reason: 'deleted' });
      if (eventHash(row) !== row.hash) return broken({ ...at, reason: 'edited' });
      if (row.prev_hash !== prevHash) return broken({ ...at, reason: 'reordered' });
      if (row.seq > heads.get(writer)!.seq) return broken({ ...at, reason: 'inserted' });
      expected = row.seq + 1;
      prevHash = row.hash;
      last = { id: row.id, seq: row.seq };
      checked += 1;
    }
    if (rows.length < pageSize) break;
    const end = eventFromDatabase(rows[rows.length - 1]!);
    cursor = [end.writer_id, end.seq];
  }
  if (writer !== null) {
    const cut = tail(writer);
    if (cut) return broken(cut);
  }
  for (const [writerId, head] of heads) {
    if (!seen.has(writerId) && head.seq > 0) {
      return broken({ eventId: null, writerId, seq: 0, reason: 'tail_truncated' });
    }
  }
  return { ok: true, checked, writers: seen.size };
}
