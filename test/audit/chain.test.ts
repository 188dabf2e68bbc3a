import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { describe, expect, it } from 'vitest';
import { Chain, chainHash, DECISION_COLUMNS, GENESIS_HASH, rowFromDatabase } from '../../src/audit/chain.ts';
import { decisionRecord } from './records.support.ts';

describe('hash chain', () => {
  it('links each row to the previous one, starting from the genesis hash, with consecutive seqs', () => {
    const chain = new Chain('w1');
    const rows = chain.append([decisionRecord(1), decisionRecord(2)]);
    const [more] = chain.append([decisionRecord(3)]);
    expect(rows.map((r) => r.seq)).toEqual([1, 2]);
    expect(more!.seq).toBe(3);
    expect(rows[0]!.prev_hash).toBe(GENESIS_HASH);
    expect(rows[1]!.prev_hash).toBe(rows[0]!.hash);
    expect(more!.prev_hash).toBe(rows[1]!.hash);
    expect(chain.last).toEqual({ seq: 3, hash: more!.hash });
  });

  it('hashes prev_hash followed by the RFC 8785 JSON of every stored column but hash', () => {
    const [row] = new Chain('w1').append([decisionRecord(1)]);
    const { hash, ...fields } = row!;
    expect(Object.keys(row!).sort()).toEqual([...DECISION_COLUMNS].sort());
    const expected = createHash('sha256')
      .update(row!.prev_hash + canonicalize(fields))
      .digest('hex');
    expect(hash).toBe(expected);
    expect(chainHash({ ...row!, allow: !row!.allow })).not.toBe(hash);
  });

  it('reuses the input JSON the service made, with the same text and hash as serialising the row', () => {
    // One caller object for several records, as a remembered token gives (its text is kept per object).
    const caller = Object.freeze({ sub: 'svc-é', iss: null, clientId: 'c', scopes: ['b', 'a'] });
    const records = [1, 2, 3].map((i) => {
      const record = decisionRecord(i, {
        caller: i === 2 ? { ...caller, sub: 'other' } : caller,
        input: { z: [1, 'é', { b: null, a: 1.5e-7 }], a: '\u2028', m: { y: true, x: -0 } },
        result: { allow: false, violations: [{ control: 'TOOL-002', message: 'x' }] },
        traceId: i === 2 ? null : 'trace',
      });
      return i === 3 ? record : { ...record, inputJson: canonicalize(record.input) };
    });
    const { rows, json } = new Chain('w1').appendJson(records);
    const plain = new Chain('w1').append(records.map(({ inputJson: _omit, ...r }) => r));
    expect(rows).toEqual(plain);
    for (const [i, row] of rows.entries()) {
      expect(row.hash).toBe(chainHash(row));
      // The row's JSON text is what is stored: the same row, hash included.
      expect(JSON.parse(json[i]!)).toEqual(JSON.parse(JSON.stringify(row)));
    }
  });

  it('recomputes the same hash from a row as Postgres returns it (Date, bigint string, reordered jsonb keys)', () => {
    const [row] = new Chain('w1').append([decisionRecord(1)]);
    const fromDb = {
      ...row!,
      decided_at: new Date(row!.decided_at),
      seq: String(row!.seq),
      input: JSON.parse(
        JSON.stringify({
          context: (row!.input as { context: unknown }).context,
          subject: (row!.input as { subject: unknown }).subject,
        }),
      ),
    };
    expect(chainHash(rowFromDatabase(fromDb))).toBe(row!.hash);
  });

  it('makes NUL characters and lone surrogates storable, so that one record cannot poison a batch', () => {
    const [row] = new Chain('w1').append([
      decisionRecord(1, { input: { 'k\u0000': 'a\u0000b', s: 'x\ud800' }, traceId: 't\u0000' }),
    ]);
    expect(row!.input).toEqual({ 'k\uFFFD': 'a\uFFFDb', s: 'x\uFFFD' });
    expect(row!.trace_id).toBe('t\uFFFD');
    expect(chainHash(row!)).toBe(row!.hash);
  });

  it('derives violated_controls from the result and normalises decided_at to ISO with milliseconds', () => {
    const [row] = new Chain('w1').append([decisionRecord(1, { decidedAt: '2026-01-02T03:04:05Z' })]);
    expect(row!.violated_controls).toEqual(['TOOL-002']);
    expect(row!.decided_at).toBe('2026-01-02T03:04:05.000Z');
  });
});
