import { compileRedactor } from './redaction';
import { convertJsonSafe, REDACTED } from './json-safe';

// An entity diff is converted when it is captured; an entry's `changes` holding it keeps it as it
// is (`reuse`) only where converting it again would give the same value and the same byte count.
const isRedacted = compileRedactor(['token']);
const CAPTURE_BUDGET = 1024;

/** A change as the subscriber stages it: converted by name only. */
function captured(change: unknown, redactor = isRedacted): unknown {
  return convertJsonSafe(change, redactor, CAPTURE_BUDGET, true).value;
}

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 'x' };
  for (let i = 0; i < depth; i++) value = { next: value };
  return value;
}

const changes: [string, unknown][] = [
  ['plain fields', { type: 'NDA', id: '7', op: 'insert', fields: { title: [null, 'Supplier NDA'], pages: [null, 3] } }],
  ['text to clean and redacted names', { type: 'NDA', id: '7', op: 'update', fields: { note: ['a=b\u0000', 'c:d'], token: 't' } }],
  ['a Map, an Error, numbers that are not finite', { fields: { m: new Map([[1, 'a']]), e: new Error('x'), n: [NaN, Infinity] } }],
  ['a Set, a Date, a Buffer, a bigint', { fields: { s: new Set([1, 2]), d: new Date(0), b: Buffer.from('ab'), big: 10n } }],
  ['a value nested 29 levels', { fields: nested(29) }],
  ['a value nested 31 levels', { fields: nested(31) }],
  ['a string cut at capture', { fields: { text: 'x'.repeat(4000) } }],
];

describe('convertJsonSafe with reuse', () => {
  it.each(changes)('gives what a second conversion gives: %s', (_name, change) => {
    const entity = captured(change);
    const entry = () => ({ body: { title: 'Supplier NDA' }, entities: [entity, entity] });
    for (const budget of [64, 200, 600, 1500, 4096, 65536]) {
      const again = convertJsonSafe(entry(), isRedacted, budget);
      const reused = convertJsonSafe(entry(), isRedacted, budget, false, true);
      expect({ json: JSON.stringify(reused.value), bytes: reused.bytes, complete: reused.complete }).toEqual({
        json: JSON.stringify(again.value),
        bytes: again.bytes,
        complete: again.complete,
      });
    }
  });

  it('converts again a diff captured with other redact keys', () => {
    const entity = captured({ fields: { secret: 's', title: 't' } }, compileRedactor(['token']));
    const { value } = convertJsonSafe({ entities: [entity] }, compileRedactor(['secret']), 4096, false, true);
    expect(value).toEqual({ entities: [{ fields: { secret: REDACTED, title: 't' } }] });
  });

  it('keeps a diff converted once as it is', () => {
    const entity = captured({ type: 'NDA', fields: { title: [null, 'Supplier NDA'] } });
    const { value } = convertJsonSafe({ entities: [entity] }, isRedacted, 4096, false, true);
    expect((value as { entities: unknown[] }).entities[0]).toBe(entity);
  });
});
