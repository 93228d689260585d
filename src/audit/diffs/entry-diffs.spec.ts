import { type EntityChange } from './entity-change';
import { diffsBytes, fitDiffs, joinDiffs, markEntityChanges, partChanges } from './entry-diffs';

const change = (title: string): EntityChange => ({ type: 'T', id: 1, op: 'insert', fields: { title: [null, title] } });

describe('entry diffs', () => {
  it('parts the module’s diffs from the rest of changes, and joins them back in the same order', () => {
    const taken = markEntityChanges({ entities: [change('a')], entitiesOmitted: 2 });
    const changes = { body: { title: 'a' }, ...taken };
    const { rest, diffs } = partChanges(changes);
    expect({ rest, diffs }).toEqual({ rest: { body: { title: 'a' } }, diffs: { entities: [change('a')], entitiesOmitted: 2 } });
    expect(JSON.stringify(joinDiffs(rest, diffs))).toBe(JSON.stringify(changes));
    expect(joinDiffs('text', diffs)).toEqual({ value: 'text', entities: [change('a')], entitiesOmitted: 2 });
  });

  it('leaves a look-alike, a value that is not an object and a throwing proxy whole, as rest', () => {
    const lookAlike = { entities: [change('a')] };
    expect(partChanges(lookAlike)).toEqual({ rest: lookAlike, diffs: undefined });
    expect(partChanges('text')).toEqual({ rest: 'text', diffs: undefined });
    const trap = new Proxy(
      {},
      {
        getOwnPropertyDescriptor() {
          throw new Error('no');
        },
      },
    );
    expect(partChanges(trap).rest).toBe(trap);
  });

  it('cuts the largest values first, each change keeping its names, and leaves out the largest changes only when those pass', () => {
    const diffs = { entities: [change('a'.repeat(100)), change('b'.repeat(100)), change('c')], entitiesOmitted: 1 };
    expect(fitDiffs(diffs, 10_000)).toBe(diffs);
    const cut = { _truncated: true, originalBytes: 102 };
    const fitted = fitDiffs(diffs, 300);
    // The small last change stays: a cut one, larger, is left out (the last of two equal ones).
    expect(fitted).toEqual({ entities: [{ ...change(''), fields: { title: [null, cut] } }, change('c')], entitiesOmitted: 2 });
    expect(diffsBytes(fitted)).toBeLessThanOrEqual(300);
    // Room for one value of 100: the first is cut, the second kept.
    expect(fitDiffs(diffs, 400)).toEqual({
      entities: [{ ...change(''), fields: { title: [null, cut] } }, change('b'.repeat(100)), change('c')],
      entitiesOmitted: 1,
    });
    expect(fitDiffs(diffs, 0)).toEqual({ entities: [], entitiesOmitted: 4 });
  });
});
