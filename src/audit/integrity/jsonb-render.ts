import { hasDataPrototype } from '../json-safe';

/** Thrown by {@link plainJsonb} at the first value its JSON text would not parse back to. */
export const NOT_PLAIN = new Error('not plain JSON data');

/**
 * A value known to be JSON data as PostgreSQL writes it out of a `jsonb` column (the text
 * `jsonbText` in `entry-encoding.ts` writes from the value parsed back from its JSON text), in
 * one walk. Throws {@link NOT_PLAIN} where the value holds anything `JSON.stringify` would change
 * (a `toJSON`, a Date, a boxed value, undefined, a non-finite number, a hole in an array). With
 * `noEscapes` (the value's JSON text holds no `\`, so no text in it needs escaping) each text is
 * written between quotes as it is, without a look at its characters.
 *
 * @example
 * plainJsonb({ bb: 1, a: [1e21, 'x'] }, true); // '{"a": [1000000000000000000000, "x"], "bb": 1}'
 */
export function plainJsonb(value: unknown, noEscapes: boolean): string {
  switch (typeof value) {
    case 'string':
      return noEscapes || PLAIN_TEXT.test(value) ? `"${value}"` : JSON.stringify(value);
    case 'number':
      return numberText(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw NOT_PLAIN;
  }
  if (value === null) return 'null';
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') throw NOT_PLAIN;
  if (Array.isArray(value)) {
    let text = '[';
    // A hole reads as undefined, which throws.
    for (let i = 0; i < value.length; i++) text += (i === 0 ? '' : ', ') + plainJsonb(value[i], noEscapes);
    return `${text}]`;
  }
  if (!hasDataPrototype(value)) throw NOT_PLAIN;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length === 0) return '{}';
  const shape = shapeOf(keys);
  let text = '';
  for (let i = 0; i < shape.sorted.length; i++) text += shape.members[i] + plainJsonb(object[shape.sorted[i]], noEscapes);
  return `${text}}`;
}

/** A finite number as `numeric` prints it; throws {@link NOT_PLAIN} for NaN and the infinities. */
function numberText(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return String(value);
  if (!Number.isFinite(value)) throw NOT_PLAIN;
  const text = String(value);
  return text.includes('e') ? plainDecimal(text) : text;
}

/**
 * An object's keys in jsonb's order, each with the text its member begins with (`{"key": ` for
 * the first, `, "key": ` after it): objects of one shape (the same keys in the same order) share it.
 */
interface Shape {
  keys: readonly string[];
  sorted: readonly string[];
  members: readonly string[];
}

/**
 * Shapes by first key. Bounded: emptied when full, and a few per first key (the oldest goes), so
 * keys that never repeat cost neither memory nor lookups past these bounds.
 */
const SHAPES = new Map<string, Shape[]>();
let shapeCount = 0;
const MAX_SHAPES = 512;
const MAX_SHAPES_PER_KEY = 8;
/** An object with more keys, or longer ones, is sorted each time: a large map of ids is seldom met twice, and kept it would hold memory. */
const MAX_SHAPE_KEYS = 32;
const MAX_SHAPE_CHARS = 1024;

function shapeOf(keys: string[]): Shape {
  const known = keys.length <= MAX_SHAPE_KEYS ? SHAPES.get(keys[0]) : undefined;
  if (known) {
    for (const shape of known) if (sameKeys(shape.keys, keys)) return shape;
  }
  const sorted = keys.slice();
  if (sorted.length > 1) sortJsonbKeys(sorted);
  const shape: Shape = { keys, sorted, members: sorted.map((key, i) => `${i === 0 ? '{' : ', '}${keyText(key)}: `) };
  if (keys.length > MAX_SHAPE_KEYS || shape.members.reduce((chars, member) => chars + member.length, 0) > MAX_SHAPE_CHARS) return shape;
  if (shapeCount >= MAX_SHAPES) {
    SHAPES.clear();
    shapeCount = 0;
  }
  const list = SHAPES.get(keys[0]);
  if (!list) {
    SHAPES.set(keys[0], [shape]);
    shapeCount += 1;
  } else if (list.push(shape) > MAX_SHAPES_PER_KEY) {
    list.shift();
  } else {
    shapeCount += 1;
  }
  return shape;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function keyText(key: string): string {
  return PLAIN_TEXT.test(key) ? `"${key}"` : JSON.stringify(key);
}

/**
 * Sorts keys in place in jsonb's order: UTF-8 byte length, then bytes.
 *
 * @example
 * sortJsonbKeys(['zz', 'é', 'z']); // ['z', 'zz', 'é'] ('é' and 'zz' are two bytes each, and 0xc3 > 0x7a)
 */
export function sortJsonbKeys(keys: string[]): void {
  keys.sort(ASCII_KEYS.test(keys.join('')) ? compareAsciiKeys : compareKeys);
}

/** Text JSON writes as it is between quotes: printable ASCII but `"` and `\`. */
const PLAIN_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

// eslint-disable-next-line no-control-regex -- every ASCII character, control characters included
const ASCII_KEYS = /^[\x00-\x7f]*$/;

/** jsonb's key order for ASCII keys: length, then code units (one byte each). */
function compareAsciiKeys(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** jsonb's key order: UTF-8 byte length, then bytes. */
function compareKeys(a: string, b: string): number {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length - y.length || Buffer.compare(x, y);
}

/**
 * A JSON number as PostgreSQL's `numeric` prints it: `1e+21` → `1000000000000000000000`, `1.5e-7` → `0.00000015`.
 *
 * @example
 * plainDecimal('1.5e-7'); // '0.00000015'
 */
export function plainDecimal(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!match) return text;
  const [, sign, whole, fraction = '', exponentText] = match;
  const digits = whole + fraction;
  const point = whole.length + Number(exponentText);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}
