import fc from 'fast-check';
import { AuditEntryNormalizer } from './audit-entry';
import { AUDIT_DEFAULTS } from './audit-options';

// Values that break or stall a naive serializer: traps that throw, and graphs that share nodes.
const MAX_BYTES = 4096;
const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, MAX_BYTES);
const UNREADABLE = '[Unreadable]';

const trap = (name: keyof ProxyHandler<object>, target: object = { x: 1 }) =>
  new Proxy(target, {
    [name]: () => {
      throw new Error(`${name} trap`);
    },
  });

/** Counts property reads; past `cap` every read throws, so that a runaway walk ends (and fails the test). */
function readCounter(cap: number) {
  const counter = { reads: 0 };
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(object, key, receiver) {
        if (++counter.reads > cap) throw new Error('too many reads');
        return Reflect.get(object, key, receiver) as unknown;
      },
    });
  return { counter, wrap };
}

/** `depth` levels, each node's two children the same node: 2^depth paths, `depth` objects. */
function sharedGraph(depth: number, wrap: <T extends object>(t: T) => T): object {
  let node: object = wrap({ leaf: 'x' });
  for (let i = 0; i < depth; i++) node = wrap({ left: node, right: node, both: [node, node] });
  return node;
}

describe('AuditEntryNormalizer on hostile values', () => {
  it('turns a value whose traps throw into a stand-in and keeps the rest of the entry, counting each', () => {
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    const { record, faults } = normalizer.normalize({
      action: 'nda_created',
      entityType: 'NDA',
      entityId: 'e1',
      userId: 'u1',
      changes: {
        keys: trap('ownKeys'),
        proto: trap('getPrototypeOf'),
        revoked: revocable.proxy,
        read: trap('get'),
        date: new Proxy(new Date(0), {}),
        ok: 1,
      },
      metadata: trap('ownKeys'),
    });
    expect(record).toMatchObject({ action: 'nda_created', entityType: 'NDA', entityId: 'e1', userId: 'u1' });
    expect(record.changes).toEqual({
      keys: UNREADABLE,
      proto: UNREADABLE,
      revoked: UNREADABLE,
      read: { x: UNREADABLE },
      date: UNREADABLE,
      ok: 1,
    });
    expect(record.metadata).toBe(UNREADABLE);
    expect(faults).toBe(6);
  });

  it('keeps what can be read of an entry that is itself a throwing proxy', () => {
    const entry = new Proxy(
      {
        action: 'nda_signed',
        userId: 'u2',
        entityId: 'e2',
        changes: { title: 't' },
        occurredAt: trap('getPrototypeOf', new Date(0)) as never,
      },
      {
        get(target, key) {
          if (key === 'changes' || key === 'entityId') throw new Error('no');
          return Reflect.get(target, key) as unknown;
        },
      },
    );
    const { record, faults } = normalizer.normalize(entry);
    expect(record).toMatchObject({ action: 'nda_signed', userId: 'u2', entityId: UNREADABLE, changes: UNREADABLE, outcome: 'success' });
    expect(new Date(record.occurredAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(faults).toBeGreaterThanOrEqual(3);
    expect(() => normalizer.normalize(trap('get') as never)).not.toThrow();
    expect(() => normalizer.normalize(revokedEntry())).not.toThrow();
  });

  it('walks a depth-30 graph of shared nodes in work bounded by the size cap, wherever it is given', () => {
    const { counter, wrap } = readCounter(1_000_000);
    const graph = sharedGraph(30, wrap);
    const { record, bytes } = normalizer.normalize({
      action: 'a',
      entityId: graph as never,
      changes: graph,
      metadata: { graph },
      occurredAt: graph as never,
    });
    expect(counter.reads).toBeLessThanOrEqual(4 * MAX_BYTES);
    expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
    expect(record.changes).toMatchObject({ _truncated: true, preview: expect.stringMatching(/^\{"left":\{"left":/) });
  });

  it('walks a sparse array of 2^32-1 slots in bounded work', () => {
    const { record, bytes } = normalizer.normalize({ action: 'a', changes: { list: new Array(2 ** 32 - 1) }, metadata: { ok: true } });
    expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
    expect(record.metadata).toEqual({ ok: true });
    expect(record.changes).toMatchObject({ _truncated: true });
  });

  it('stays within maxEntryBytes, in work linear in it, for any graph of shared nodes', () => {
    const dag = fc
      .array(fc.tuple(fc.nat(), fc.nat(), fc.string({ maxLength: 20 }), fc.boolean()), { minLength: 20, maxLength: 45 })
      .map((specs) => (wrap: <T extends object>(t: T) => T) => {
        const nodes: unknown[] = [];
        // Children among the last three nodes: deep chains, so paths multiply.
        const near = (n: number, i: number) => nodes[i - 1 - (n % Math.min(i, 3))];
        specs.forEach(([a, b, text, asArray], i) => {
          if (i === 0) nodes.push(text);
          else nodes.push(wrap(asArray ? [near(a, i), text, near(b, i)] : { text, a: near(a, i), b: near(b, i) }));
        });
        return nodes[nodes.length - 1];
      });
    fc.assert(
      fc.property(dag, fc.boolean(), (build, inMetadata) => {
        const { counter, wrap } = readCounter(200_000);
        const value = build(wrap);
        const { record, bytes } = normalizer.normalize({
          action: 'a',
          userId: 'u',
          ...(inMetadata ? { metadata: value } : { changes: value }),
        });
        expect(Buffer.byteLength(JSON.stringify(record))).toBe(bytes);
        expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
        expect(counter.reads).toBeLessThanOrEqual(4 * MAX_BYTES);
      }),
      { numRuns: 200 },
    );
  });
});

function revokedEntry(): never {
  const { proxy, revoke } = Proxy.revocable({ action: 'x' }, {});
  revoke();
  return proxy as never;
}
