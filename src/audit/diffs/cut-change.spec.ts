import { compileRedactor } from '../json-safe';
import { capturedChange, cutToFit, fitChanges, heldChange } from './cut-change';

const isRedacted = compileRedactor(['password']);
const cut = (originalBytes: number) => ({ _truncated: true, originalBytes });

describe('cutting entity changes to the diffs’ share', () => {
  it('captures a change that fits as it is, and cuts only the value that passes the share', () => {
    const small = { type: 'T', id: 1, op: 'update', fields: { title: ['a', 'b'] } };
    expect(capturedChange(small, isRedacted, 1024)).toEqual({ value: small, bytes: expect.any(Number) as number });
    const padded = { type: 'T', id: 1, op: 'update', fields: { title: ['a', 'x'.repeat(5000)], password: ['p', 'q'], n: [1, 2] } };
    const { value, bytes } = capturedChange(padded, isRedacted, 1024);
    expect(value).toEqual({ type: 'T', id: 1, op: 'update', fields: { title: ['a', cut(5002)], password: '[REDACTED]', n: [1, 2] } });
    expect(bytes).toBe(Buffer.byteLength(JSON.stringify(value)));
  });

  it('cuts a change whose values JSON cannot write as they are (a bigint, a cycle) as the conversion writes them', () => {
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    const change = { type: 'T', id: 1, op: 'update', fields: { big: [1n, 2n], graph: [null, cycle], pad: [null, 'p'.repeat(3000)] } };
    expect(capturedChange(change, isRedacted, 1024).value).toEqual({
      type: 'T',
      id: 1,
      op: 'update',
      fields: { big: ['1', '2'], graph: [null, { name: 'loop', self: '[Circular]' }], pad: [null, cut(3002)] },
    });
  });

  it('cuts values of a change with unknown prior state (after), objects and arrays included', () => {
    const change = {
      type: 'T',
      id: null,
      op: 'update',
      before: 'unknown',
      after: { data: { pad: 'y'.repeat(3000) }, list: ['z'.repeat(3000)], k: 'v' },
    };
    const { value } = capturedChange(change, isRedacted, 2048);
    expect(value).toEqual({ type: 'T', id: null, op: 'update', before: 'unknown', after: { data: cut(3010), list: cut(3004), k: 'v' } });
  });

  it('redacts by name only, the cut change too: a value never redacts another', () => {
    const change = { type: 'T', id: 1, op: 'update', fields: { note: ['password=abc', 'w'.repeat(3000)] } };
    const { value } = capturedChange(change, isRedacted, 1024);
    expect(value).toEqual({ type: 'T', id: 1, op: 'update', fields: { note: ['password=abc', cut(3002)] } });
  });

  it('cuts the largest values to fit, or all of them, never the names', () => {
    const change = {
      value: { type: 'T', id: 1, op: 'update', fields: { a: ['x'.repeat(300), 'y'.repeat(200)], b: [null, 'z'] } },
      bytes: 600,
    };
    expect(cutToFit(change, 1000)).toBe(change);
    expect(cutToFit(change, 350).value).toEqual({
      type: 'T',
      id: 1,
      op: 'update',
      fields: { a: [cut(302), 'y'.repeat(200)], b: [null, 'z'] },
    });
    expect(cutToFit(change, 10).value).toEqual({ type: 'T', id: 1, op: 'update', fields: { a: [cut(302), cut(202)], b: [null, 'z'] } });
    expect(change.value.fields.a[0]).toBe('x'.repeat(300));
  });

  it('holds changes whole within the share, then cut within a share of their own, then leaves them out', () => {
    const change = (n: number) => ({ value: { type: 'T', id: n, op: 'insert', fields: { v: [null, 'v'.repeat(400)] } }, bytes: 460 });
    expect(heldChange({ bytes: 0, cutBytes: 0 }, change(1), 1000)).toEqual(change(1));
    const held = heldChange({ bytes: 920, cutBytes: 0 }, change(3), 1000);
    expect(held).toMatchObject({ cut: true, value: { id: 3, fields: { v: [null, cut(402)] } } });
    expect(heldChange({ bytes: 1900, cutBytes: 990 }, change(4), 1000)).toBeUndefined();
  });

  it('fits many changes by cutting the largest values across them, then leaving out the largest changes', () => {
    const changes = [1, 2, 3].map((n) => ({ type: 'T', id: n, op: 'insert', fields: { v: [null, String(n).repeat(100 * n)] } }));
    const { kept, omitted } = fitChanges(changes, 400, 0);
    expect(omitted).toBe(0);
    expect(kept.map((c) => (c as { fields: { v: unknown[] } }).fields.v[1])).toEqual(['1'.repeat(100), cut(202), cut(302)]);
    expect(fitChanges(changes, 120, 0)).toEqual({ kept: [{ ...changes[0], fields: { v: [null, cut(102)] } }], omitted: 2 });
  });

  it('leaves out the largest change, never a small one after it, and cuts a long id as a value', () => {
    const padded = (letter: string) => ({
      type: 'Sku',
      id: letter.repeat(2_000),
      op: 'insert',
      fields: { code: [null, letter.repeat(2_000)] },
    });
    const small = { type: 'Contract', id: 1, op: 'insert', fields: { title: [null, 'lease'] } };
    const { kept, omitted } = fitChanges([padded('a'), padded('b'), padded('c'), small], 1_000, 0);
    expect(omitted).toBe(0);
    expect(kept[3]).toEqual(small);
    expect(kept[0]).toEqual({ type: 'Sku', id: cut(2_002), op: 'insert', fields: { code: [null, cut(2_002)] } });
    const many = Array.from({ length: 40 }, (_, n) => ({ type: 'Sku', id: n, op: 'insert', fields: { code: [null, 'x'.repeat(60)] } }));
    const fitted = fitChanges([...many, small], 600, 0);
    expect(fitted.omitted).toBeGreaterThan(0);
    expect(fitted.kept.at(-1)).toEqual(small);
  });

  it('cuts a long key of a composite id, and a text id past the limit when a change is captured', () => {
    const change = { type: 'Grant', id: { scope: 's'.repeat(5_000), n: 1 }, op: 'insert', fields: { n: [null, 1] } };
    expect(cutToFit({ value: change, bytes: 5_100 }, 500).value).toEqual({ ...change, id: { scope: cut(5_002), n: 1 } });
    const captured = capturedChange({ type: 'Sku', id: 'k'.repeat(40_000), op: 'insert', fields: {} }, () => false, 1_000);
    expect(captured.value).toEqual({ type: 'Sku', id: cut(40_002), op: 'insert', fields: {} });
    expect(captured.bytes).toBeLessThan(1_000);
  });
});
