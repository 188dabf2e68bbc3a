import { describe, expect, it } from 'vitest';
import { decisionId } from '../../src/decisions/ids.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msecsOf = (id: string) => Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

describe('decision ids', () => {
  it('are UUIDv7 carrying the decision time, unique, and in creation order within a millisecond', () => {
    const at = Date.parse('2026-11-26T12:00:00.123Z');
    // More than one pool of random bytes (4 KiB = 256 ids), within one millisecond and across several.
    const ids = Array.from({ length: 1000 }, (_, i) => decisionId(at + Math.floor(i / 300)));
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.map(msecsOf)).toEqual(ids.map((_, i) => at + Math.floor(i / 300)));
    expect([...ids].sort()).toEqual(ids);
  });

  it('take their timestamp from the time given, not the wall clock', () => {
    expect(msecsOf(decisionId(Date.parse('2031-04-02T00:00:00.000Z')))).toBe(
      Date.parse('2031-04-02T00:00:00.000Z'),
    );
  });
});
