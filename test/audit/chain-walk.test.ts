import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ChainedRow, ChainWalker, GENESIS_HASH } from '../../src/audit/chain-walk.ts';

interface Row extends ChainedRow {
  body: string;
}

const hash = (row: Row) => crypto.hash('sha256', `${row.prev_hash}|${row.id}|${row.body}`, 'hex');

/** A chain of `n` rows of one writer, from seq 1. */
function chain(writer: string, n: number): Row[] {
  const rows: Row[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq += 1) {
    const row: Row = {
      id: `${writer}-${seq}`,
      writer_id: writer,
      seq,
      prev_hash: prev,
      hash: '',
      body: `b${seq}`,
    };
    row.hash = hash(row);
    rows.push(row);
    prev = row.hash;
  }
  return rows;
}

function walk(rows: Row[], options: Partial<ConstructorParameters<typeof ChainWalker<Row>>[0]> = {}) {
  const walker = new ChainWalker<Row>({ hash, ...options });
  const breaks = [...rows.flatMap((row) => walker.step(row)), ...walker.finish()];
  return { walker, breaks: breaks.map(({ id, reason, seq }) => ({ id, reason, seq })) };
}

describe('ChainWalker', () => {
  it('passes intact chains and counts rows and chains', () => {
    const heads = new Map([
      ['a', 3],
      ['b', 2],
    ]);
    const { walker, breaks } = walk([...chain('a', 3), ...chain('b', 2)], { heads, toHeads: true });
    expect(breaks).toEqual([]);
    expect([walker.checked, walker.chains]).toEqual([5, 2]);
  });

  it('finds an edited, a deleted, an inserted and a moved row', () => {
    const edited = chain('a', 3);
    edited[1]!.body = 'changed';
    expect(walk(edited).breaks).toEqual([{ id: 'a-2', reason: 'edited', seq: 2 }]);

    const deleted = chain('a', 3);
    deleted.splice(1, 1);
    expect(walk(deleted).breaks).toEqual([{ id: 'a-3', reason: 'deleted', seq: 3 }]);

    const inserted = chain('a', 3);
    inserted.splice(2, 0, { ...inserted[1]!, id: 'forged' });
    expect(walk(inserted).breaks[0]).toEqual({ id: 'forged', reason: 'inserted', seq: 2 });

    const moved = chain('a', 3);
    const other = chain('x', 3);
    moved[1] = { ...other[1]!, writer_id: 'a' };
    expect(walk(moved).breaks).toEqual([
      { id: 'x-2', reason: 'reordered', seq: 2 },
      { id: 'a-3', reason: 'reordered', seq: 3 },
    ]);
  });

  it('checks heads: rows past a head, a writer without one, a cut tail, a writer with no row left', () => {
    expect(walk(chain('a', 3), { heads: new Map([['a', 2]]), toHeads: true }).breaks).toEqual([
      { id: 'a-3', reason: 'inserted', seq: 3 },
    ]);
    expect(walk(chain('a', 1), { heads: new Map(), toHeads: true }).breaks).toEqual([
      { id: 'a-1', reason: 'inserted', seq: 1 },
    ]);
    expect(walk(chain('a', 2), { heads: new Map([['a', 3]]), toHeads: true }).breaks).toEqual([
      { id: 'a-2', reason: 'tail_truncated', seq: 2 },
    ]);
    const heads = new Map([
      ['a', 2],
      ['gone', 4],
    ]);
    expect(walk(chain('a', 2), { heads, toHeads: true }).breaks).toEqual([
      { id: null, reason: 'tail_truncated', seq: 0 },
    ]);
    // Without toHeads (a window with an end) tails and rows past heads are not compared.
    expect(walk(chain('a', 2), { heads: new Map([['a', 1]]) }).breaks).toEqual([]);
  });

  it('anchored: a chain seen from the middle starts at its first row', () => {
    const rows = chain('a', 5).slice(2);
    expect(walk(rows).breaks).toEqual([{ id: 'a-3', reason: 'deleted', seq: 3 }]);
    expect(walk(rows, { anchored: true }).breaks).toEqual([]);
  });

  it('chainOf keeps a foreign row in the chain it was found in', () => {
    const rows = chain('a', 3);
    // Another writer's row, rehashed so that only its writer and the broken link give it away.
    rows[1] = { ...rows[1]!, writer_id: 'b', body: 'foreign' };
    rows[1].hash = hash(rows[1]);
    const { breaks, walker } = walk(rows, { chainOf: () => 'a' });
    expect(walker.chains).toBe(1);
    expect(breaks).toEqual([{ id: 'a-3', reason: 'reordered', seq: 3 }]);
  });
});
