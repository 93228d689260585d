import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { sameValue, storedDecimal } from './diff-values';

/**
 * Whether two values of a column leave it holding the same: true when they do, false when they do
 * not, undefined when that is not known exactly (the values are then compared as they are, and
 * listed when they differ).
 */
export type StoredAlike = (a: unknown, b: unknown) => boolean | undefined;

/** The driver calls a stored form makes: the type PostgreSQL knows the column by, and what TypeORM sends for a value. */
interface Driver {
  normalizeType(column: ColumnMetadata): string;
  preparePersistentValue(value: unknown, column: ColumnMetadata): unknown;
}

/**
 * How a column stores the values an app sets: what TypeORM sends for the value (its own
 * conversions: a `Date` of a `date` column as its day, a `jsonb` value as JSON text), read as
 * PostgreSQL reads that input for the column's type. Two values stored alike leave the column
 * holding the same, so a property written with the value it had, in another spelling, is no change:
 * - `numeric` rounded to the scale the column has (TypeORM gives the column a scale only with a
 *   precision: `{ scale: 2 }` alone is a plain `numeric`, which keeps every digit); a negative
 *   scale rounds before the point; `bigint`, `integer`, `smallint` by their number (`5` and `'5'`);
 * - `boolean` by PostgreSQL's words for true and false (`'true'`, `'yes'`, `'1'`, …), after
 *   TypeORM's own conversion (a property typed `boolean` without a column type sends `1` for
 *   `true` only, `0` for anything else, `'true'` too);
 * - `uuid` in lower case, braces and hyphens aside;
 * - `time` as `HH:MM`, `HH:MM:SS` or with up to 6 digits of a second, rounded to the column's precision;
 * - `timestamp` and `timestamptz` by the instant TypeORM sends (a string read as a `Date`),
 *   rounded to the column's precision (`timestamptz(0)` drops the milliseconds);
 * - `jsonb` by the JSON value of the text sent (a `Date` inside as its ISO text, keys in any order);
 *   `json` by the text sent;
 * - any other column by the text sent, when it is sent as text (a number as its digits).
 * None for a column with a transformer or an array column: those are compared as they are.
 *
 * @example
 * storedAlike(uuidColumn)!('0193a1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f', '0193A1C2-7B3E-7C4D-8E5F-0A1B2C3D4E5F'); // true
 * storedAlike(timeColumn)!('10:00:00', '10:00'); // true
 * storedAlike(timeColumn)!('10:00:00', '10:00 AM'); // undefined (not read here)
 */
export function storedAlike(column: ColumnMetadata): StoredAlike | undefined {
  if (column.transformer || column.isArray || column.referencedColumn?.transformer) return undefined;
  const driver = (column.entityMetadata as { connection?: { driver?: Partial<Driver> } } | undefined)?.connection?.driver;
  if (typeof driver?.normalizeType !== 'function' || typeof driver.preparePersistentValue !== 'function') return undefined;
  const { normalizeType, preparePersistentValue } = driver as Driver;
  const send = (value: unknown): unknown => {
    if (value === null || value === undefined || typeof value === 'function') return undefined;
    try {
      return preparePersistentValue.call(driver, value, column);
    } catch {
      return undefined;
    }
  };
  const type = normalizeType.call(driver, column);
  if (type === 'jsonb') {
    return (a, b) => {
      const [x, y] = [send(a), send(b)];
      return typeof x === 'string' && typeof y === 'string' ? sameJsonb(x, y) : undefined;
    };
  }
  const read = inputReader(type, column);
  const stored = (value: unknown): string | undefined => {
    const sent = send(value);
    return sent === undefined ? undefined : read(sent);
  };
  return (a, b) => {
    const [x, y] = [stored(a), stored(b)];
    return x === undefined || y === undefined ? undefined : x === y;
  };
}

/**
 * Two JSON texts JavaScript wrote as `jsonb` stores them: the same JSON value. Texts written for
 * values `jsonb` holds alike differ only in the order of object members, so a text of another
 * length holds another value; past 32 levels the values are taken to differ.
 */
function sameJsonb(x: string, y: string): boolean {
  if (x === y) return true;
  if (x.length !== y.length) return false;
  try {
    return sameValue(JSON.parse(x), JSON.parse(y));
  } catch {
    return false;
  }
}

/**
 * A uuid column's value as it is stored: its canonical text (lower case,
 * hyphenated), as PostgreSQL stores and writes it back; undefined for text PostgreSQL does not read as a uuid.
 *
 * @example
 * canonicalUuid('{0193A1C27B3E7C4D8E5F0A1B2C3D4E5F}'); // '0193a1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f'
 */
export function canonicalUuid(text: string): string | undefined {
  // PostgreSQL's uuid input: 32 hex digits, a hyphen allowed after any group of four, the whole in braces or not.
  if (text.length > 40 || !/^(?:\{[0-9a-f]{4}(?:-?[0-9a-f]{4}){7}\}|[0-9a-f]{4}(?:-?[0-9a-f]{4}){7})$/i.test(text)) return undefined;
  const hex = text.replace(/[{}-]/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Reads what TypeORM sends for a column of `type` as PostgreSQL stores it: a text to compare by. */
function inputReader(type: string, column: ColumnMetadata): (sent: unknown) => string | undefined {
  switch (type) {
    case 'numeric': {
      // numeric(p,s) rounds to s, numeric(p) to whole numbers; TypeORM writes no (p,s) without a precision.
      const scale = column.precision == null ? undefined : (column.scale ?? 0);
      return (sent) => storedDecimal(sent, scale);
    }
    case 'bigint':
    case 'integer':
    case 'smallint':
      // A whole number as PostgreSQL's integer input reads it (blanks around, a sign); any other text is refused by the write.
      return (sent) =>
        typeof sent === 'number' ||
        typeof sent === 'bigint' ||
        (typeof sent === 'string' && /^[ \t\n\r\v\f]*[+-]?\d+[ \t\n\r\v\f]*$/.test(sent))
          ? storedDecimal(String(sent).trim(), undefined)
          : undefined;
    case 'boolean':
      return (sent) =>
        typeof sent === 'boolean'
          ? sent
            ? 't'
            : 'f'
          : typeof sent === 'string' || typeof sent === 'number'
            ? booleanInput(String(sent))
            : undefined;
    case 'uuid':
      return (sent) => (typeof sent === 'string' ? canonicalUuid(sent) : undefined);
    case 'time without time zone': {
      const digits = Math.min(column.precision ?? 6, 6);
      return (sent) => (typeof sent === 'string' ? timeOfDay(sent, digits) : undefined);
    }
    case 'timestamp without time zone':
    case 'timestamp with time zone': {
      const digits = column.precision ?? 6;
      return (sent) => (sent instanceof Date ? instant(sent, digits) : undefined);
    }
    case 'date':
    case 'time with time zone':
    case 'interval':
      // Read relative to the session's clock or zone ('today', 'now') or by rules not followed here: the text sent tells too little.
      return (sent) => (typeof sent === 'string' && /^[0-9]/.test(sent) ? sent : undefined);
    default:
      return (sent) => (typeof sent === 'string' ? sent : typeof sent === 'number' || typeof sent === 'bigint' ? String(sent) : undefined);
  }
}

/** PostgreSQL's boolean input: `'t'` or `'f'`, for a whole word or its start (`'tr'`, `'ye'`, `'of'`), `'1'`, `'0'`, any case, blanks around. */
function booleanInput(text: string): string | undefined {
  const word = text.replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, '').toLowerCase();
  if (word === '1') return 't';
  if (word === '0') return 'f';
  if (word === '') return undefined;
  // 'o' alone is neither on nor off.
  const starts = (full: string, least = 1) => word.length >= least && full.startsWith(word);
  if (starts('true') || starts('yes') || starts('on', 2)) return 't';
  if (starts('false') || starts('no') || starts('off', 2)) return 'f';
  return undefined;
}

/** A `time` value's microseconds, rounded half up to `digits` of a second; only `HH:MM`, `HH:MM:SS` and `HH:MM:SS.ffffff`. */
function timeOfDay(text: string, digits: number): string | undefined {
  const parts = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$/.exec(text);
  if (!parts) return undefined;
  const [hours, minutes, seconds] = [Number(parts[1]), Number(parts[2]), Number(parts[3] ?? 0)];
  const micros = Number((parts[4] ?? '').padEnd(6, '0'));
  if (minutes > 59 || seconds > 59 || hours > 24 || (hours === 24 && (minutes > 0 || seconds > 0 || micros > 0))) return undefined;
  const unit = 10 ** (6 - digits);
  const total = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
  return String(Math.floor((total + Math.floor(unit / 2)) / unit) * unit);
}

/** Milliseconds from 2000-01-01, PostgreSQL's epoch, which it rounds from (half away from it). */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

/**
 * A `Date` as a timestamp column stores what the driver sends for it, by its instant in
 * milliseconds, rounded half away from PostgreSQL's epoch to `digits` of a second.
 */
function instant(date: Date, digits: number): string | undefined {
  const ms = date.getTime();
  if (!Number.isFinite(ms) || date.getFullYear() < 1 || date.getFullYear() > 9999) return undefined;
  if (digits >= 3) return String(ms);
  const unit = 10 ** (3 - digits);
  const from = ms - PG_EPOCH_MS;
  const rounded = from >= 0 ? Math.floor((from + unit / 2) / unit) * unit : -Math.floor((-from + unit / 2) / unit) * unit;
  return String(rounded + PG_EPOCH_MS);
}
