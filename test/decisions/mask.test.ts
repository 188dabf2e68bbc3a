import { describe, expect, it } from 'vitest';
import { applyMask, maskRules } from '../../src/decisions/mask.ts';

const input = { user: { email: 'a@b.c', name: 'A' }, args: ['x', 'secret'], 'a/b': 1 };

describe('applyMask', () => {
  it('erases the values its pointers name and leaves the original untouched', () => {
    const { input: masked, masked: paths } = applyMask(input, ['/input/user/email', '/input/a~1b']);
    expect(masked).toEqual({ user: { name: 'A' }, args: ['x', 'secret'] });
    expect(paths).toEqual(['/input/user/email', '/input/a~1b']);
    expect(input.user.email).toBe('a@b.c');
    expect(input['a/b']).toBe(1);
  });

  it('copies only the path it changes and never writes into the original', () => {
    const original = structuredClone(input);
    const { input: masked } = applyMask(input, [
      '/input/user/email',
      '/input/args/1',
      { op: 'upsert', path: '/input/user/token', value: '***' },
      { op: 'upsert', path: '/input/new/deep', value: 1 },
    ]);
    expect(input).toEqual(original);
    expect(masked).toEqual({ user: { name: 'A', token: '***' }, args: ['x'], 'a/b': 1, new: { deep: 1 } });
    const untouched = applyMask({ keep: { big: [1, 2] }, drop: { x: 1 } }, ['/input/drop/x']).input as {
      keep: unknown;
    };
    expect(untouched.keep).toEqual({ big: [1, 2] });
  });

  it('upserts values, creating parents', () => {
    const { input: masked } = applyMask(input, [{ op: 'upsert', path: '/input/user/token', value: '***' }]);
    expect((masked as typeof input & { user: { token: string } }).user.token).toBe('***');
  });

  it('ignores pointers outside /input and missing paths', () => {
    const { input: masked, masked: paths } = applyMask(input, ['/result/allow', '/input/nope/deeper', 'x']);
    expect(masked).toEqual(input);
    expect(paths).toEqual([]);
  });

  it('normalises what a mask policy returns', () => {
    expect(
      maskRules(['/input/a', 3, { op: 'upsert', path: '/input/b', value: 1 }, { op: 'bad' }]),
    ).toHaveLength(2);
    expect(maskRules('not an array')).toEqual([]);
  });
});
