import fc from 'fast-check';
import { RingBuffer } from './ring-buffer';

type Op = { kind: 'push'; bytes: number } | { kind: 'shift' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('push' as const), bytes: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('shift' as const) }) },
);

describe('RingBuffer', () => {
  it('behaves like a FIFO queue bounded by count and bytes, evicting exactly the oldest items', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 40, max: 200 }),
        fc.array(op, { maxLength: 300 }),
        (capacity, maxBytes, ops) => {
          const ring = new RingBuffer<number>({ capacity, maxBytes });
          const model: { id: number; bytes: number }[] = [];
          let next = 0;
          for (const o of ops) {
            if (o.kind === 'shift') {
              expect(ring.shift()).toBe(model.shift()?.id);
            } else {
              const id = next++;
              const expectedEvictions: number[] = [];
              while (model.length > 0 && (model.length === capacity || model.reduce((s, m) => s + m.bytes, 0) + o.bytes > maxBytes)) {
                expectedEvictions.push(model.shift()!.id);
              }
              model.push({ id, bytes: o.bytes });
              const evicted = ring.push(id, o.bytes);
              expect(evicted).toEqual(expectedEvictions);
            }
            expect(ring.size).toBeLessThanOrEqual(capacity);
            expect(ring.bytes).toBeLessThanOrEqual(maxBytes);
            expect(ring.bytes).toBe(model.reduce((s, m) => s + m.bytes, 0));
            expect(ring.toArray()).toEqual(model.map((m) => m.id));
            expect(ring.peek()).toBe(model[0]?.id);
          }
        },
      ),
    );
  });

  it('keeps the newest `capacity` items after any number of pushes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 500 }), (capacity, pushes) => {
        const ring = new RingBuffer<number>({ capacity, maxBytes: Number.MAX_SAFE_INTEGER });
        let evicted = 0;
        for (let i = 0; i < pushes; i += 1) evicted += ring.push(i, 1).length;
        expect(evicted).toBe(Math.max(0, pushes - capacity));
        expect(ring.toArray()).toEqual(
          Array.from({ length: Math.min(capacity, pushes) }, (_, k) => pushes - Math.min(capacity, pushes) + k),
        );
      }),
    );
  });

  it('peeks without removing and shifts nothing from an empty ring', () => {
    const ring = new RingBuffer<string>({ capacity: 3, maxBytes: 100 });
    expect(ring.shift()).toBeUndefined();
    ring.push('a', 1);
    ring.push('b', 1);
    expect(ring.peekMany(5)).toEqual(['a', 'b']);
    expect(ring.size).toBe(2);
  });

  it('rejects a capacity or byte bound that is not positive', () => {
    expect(() => new RingBuffer({ capacity: 0, maxBytes: 10 })).toThrow(/capacity must be a positive integer/);
    expect(() => new RingBuffer({ capacity: 1.5, maxBytes: 10 })).toThrow(/capacity/);
    expect(() => new RingBuffer({ capacity: 1, maxBytes: 0 })).toThrow(/maxBytes must be a positive number/);
  });
});
