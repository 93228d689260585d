import { Logger } from '@nestjs/common';
import { safeString } from './json-safe';

let warned = false;

/**
 * The stored form of a user id: a string, a finite number or a bigint, as text. Anything else (an
 * object such as the whole `req.user`, an array, a JSON text of either, a boolean) is stored as
 * null, and one warning per process says so, without the value: it may hold tokens or passwords.
 *
 * @example
 * userIdText(42, 256); // '42'
 * userIdText({ id: 42, password: 'x' }, 256); // null, and a warning the first time
 */
export function userIdText(value: unknown, limit: number): string | null {
  if (value === undefined || value === null) return null;
  const raw =
    typeof value === 'string'
      ? value
      : typeof value === 'bigint' || (typeof value === 'number' && Number.isFinite(value))
        ? String(value)
        : null;
  if (raw === null || looksLikeJsonObject(raw)) {
    warnOnce(typeof value === 'string' ? 'JSON text of an object' : Array.isArray(value) ? 'array' : typeof value);
    return null;
  }
  const cleaned = safeString(raw);
  return cleaned.length > limit ? safeString(cleaned.slice(0, limit)) : cleaned;
}

/** A serialized object is still the object: `{"id":1,"password":…}` is not an id. */
function looksLikeJsonObject(text: string): boolean {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return false;
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === 'object';
  } catch {
    return false;
  }
}

function warnOnce(kind: string): void {
  if (warned) return;
  warned = true;
  new Logger('AuditModule').warn(
    `an audit entry's userId was a ${kind}, not a string or number id: stored as null (check userIdFrom and the userId given to log()); ` +
      'later ones are stored as null without this warning',
  );
}
