import { convertJsonSafe } from '../json-safe';

/**
 * A value of an entity change left out for its size, as the body's cut values are marked: its
 * size as JSON in bytes (at least: a value cut short while read is measured as far as it was read).
 *
 * @example
 * const cut: CutValue = { _truncated: true, originalBytes: 40_012 }; // fields.counterparty[1] of a padded change
 */
export interface CutValue {
  _truncated: true;
  originalBytes: number;
}

/** A change converted to JSON-safe values and its size in bytes, as the diffs hold it; `cut` when held with its values cut past the diffs' share. */
export interface SizedChange {
  value: unknown;
  bytes: number;
  cut?: boolean;
}

/** Bytes of a {@link CutValue} with a large size: a value this small or smaller is never cut. */
const CUT_BYTES = 48;

/** One value of a change: `fields[name][0 | 1]` (before, after) or `after[name]`. */
interface Slot {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
  bytes: number;
}

/**
 * An entity change as the diffs capture it: converted JSON-safe and redacted by name, as it is
 * when it fits `maxBytes`. A larger one keeps its entity type, op and field names: each value (a
 * text id and each key of a composite id too) is converted apart, one past `maxBytes` is cut
 * ({@link CutValue}), and the largest are cut until the change fits `maxBytes` (only values, so a
 * change of many fields may stay larger).
 *
 * @example
 * capturedChange({ type: 'Contract', id: 7, op: 'update', fields: { note: ['a', 'x'.repeat(40_000)] } }, isRedacted, 32_768);
 * // { value: { …, fields: { note: ['a', { _truncated: true, originalBytes: 40002 }] } }, bytes: 95 }
 */
export function capturedChange(change: object, isRedacted: (key: string) => boolean, maxBytes: number): SizedChange {
  const whole = convertJsonSafe(change, isRedacted, maxBytes, true);
  if (whole.complete && whole.bytes <= maxBytes) return { value: whole.value, bytes: whole.bytes };
  const copy = copied(change as Record<string, unknown>);
  // Not measured: the values are not JSON-safe yet (a bigint, a cycle).
  for (const slot of slotsOf(copy, false)) {
    const value = convertJsonSafe(slot.holder[slot.key as never], isRedacted, maxBytes, true);
    const fits = value.complete && value.bytes <= maxBytes;
    slot.holder[slot.key as never] = (fits ? value.value : cutValue(value.bytes)) as never;
  }
  const converted = convertJsonSafe(copy, isRedacted, Number.MAX_SAFE_INTEGER, true).value;
  return cutToFit({ value: converted, bytes: jsonBytes(converted) }, maxBytes);
}

/**
 * The change within `maxBytes`: its largest values cut ({@link CutValue}) until it fits, its
 * entity, op and field names kept (an id longer than a cut marker is a value too); with every value cut when even that does not fit (its
 * `bytes` then pass `maxBytes`). The same change when it fits. The change's own prototype is
 * kept (the diffs' conversion by name only).
 *
 * @example
 * cutToFit({ value: change, bytes: 40_100 }, 1_000); // { value: { …, fields: { note: ['a', { _truncated: true, originalBytes: 40002 }] } }, bytes: 98 }
 */
export function cutToFit(change: SizedChange, maxBytes: number): SizedChange {
  if (change.bytes <= maxBytes) return change;
  const value = copied(change.value as Record<string, unknown>);
  let bytes = jsonBytes(value);
  const slots = slotsOf(value).sort((a, b) => b.bytes - a.bytes);
  for (const slot of slots) {
    if (bytes <= maxBytes || slot.bytes <= CUT_BYTES) break;
    slot.holder[slot.key as never] = cutValue(slot.bytes) as never;
    bytes += jsonBytes(slot.holder[slot.key as never]) - slot.bytes;
  }
  return { value, bytes: jsonBytes(value) };
}

/**
 * The changes (JSON-safe) within `maxBytes` as one JSON array, less `frame`: the largest values
 * among all of them (ids too) cut first ({@link CutValue}), so that every change keeps its entity,
 * op and field names; only when even those pass, whole changes are left out, the largest first.
 *
 * @example
 * fitChanges([big, small], 1_024, 48); // { kept: [big with its values cut, small], omitted: 0 }
 */
export function fitChanges(changes: readonly unknown[], maxBytes: number, frame: number): { kept: unknown[]; omitted: number } {
  const kept = [...changes];
  const sizes = kept.map((change) => jsonBytes(change) + 1);
  let bytes = frame + sizes.reduce((sum, size) => sum + size, 0);
  if (bytes <= maxBytes) return { kept, omitted: 0 };
  const slots: (Slot & { change: number })[] = [];
  kept.forEach((change, index) => {
    if (!isRecord(change)) return;
    kept[index] = copied(change);
    for (const slot of slotsOf(kept[index] as Record<string, unknown>)) slots.push({ ...slot, change: index });
  });
  slots.sort((a, b) => b.bytes - a.bytes);
  for (const slot of slots) {
    if (bytes <= maxBytes || slot.bytes <= CUT_BYTES) break;
    slot.holder[slot.key as never] = cutValue(slot.bytes) as never;
    const size = jsonBytes(kept[slot.change]) + 1;
    bytes += size - sizes[slot.change];
    sizes[slot.change] = size;
  }
  // The largest change goes first (the last of equals): a small one is never lost for the size of another.
  while (kept.length > 0 && bytes > maxBytes) {
    const largest = sizes.lastIndexOf(Math.max(...sizes));
    bytes -= sizes[largest];
    kept.splice(largest, 1);
    sizes.splice(largest, 1);
  }
  return { kept, omitted: changes.length - kept.length };
}

/**
 * A change as a request's diffs hold it, for `maxBytes` (half of `maxEntryBytes`), given what is
 * held already: whole while the changes held whole fit `maxBytes`; past that, with its values cut
 * to the room they leave (all of them when none is left) and marked `cut`, while the changes held
 * cut fit `maxBytes` too; undefined (left out, counted) past both. So a request's changes keep
 * their entity and field names when some of them are large, memory holds at most
 * `maxEntryBytes`, and the diffs are fitted to `maxBytes` when the row takes them
 * ({@link fitChanges}).
 *
 * @example
 * heldChange({ bytes: 30_000, cutBytes: 0 }, { value: change, bytes: 20_000 }, 32_768); // its values cut to 2,768 bytes, or all cut
 */
export function heldChange(held: { bytes: number; cutBytes: number }, change: SizedChange, maxBytes: number): SizedChange | undefined {
  const whole = held.bytes - held.cutBytes;
  if (!change.cut && whole + change.bytes <= maxBytes) return change;
  if (held.cutBytes + CUT_BYTES > maxBytes) return undefined;
  const cut = cutToFit(change, Math.max(0, maxBytes - whole));
  return held.cutBytes + cut.bytes <= maxBytes ? { ...cut, cut: true } : undefined;
}

function cutValue(originalBytes: number): CutValue {
  return { _truncated: true, originalBytes };
}

/** The values of a change, measured (JSON-safe ones only), in the copy's own `id` (a text id, or each key of a composite one), `fields` and `after` (copied, so that cutting them changes no other change). */
function slotsOf(change: Record<string, unknown>, measured = true): Slot[] {
  const slots: Slot[] = [];
  const measure = measured ? jsonBytes : () => 0;
  const id = change.id;
  if (typeof id === 'string') slots.push({ holder: change, key: 'id', bytes: measure(id) });
  if (isRecord(id)) {
    const own = (change.id = copied(id));
    for (const name of Object.keys(own)) slots.push({ holder: own, key: name, bytes: measure(own[name]) });
  }
  const fields = change.fields;
  if (isRecord(fields)) {
    const own = (change.fields = copied(fields));
    for (const name of Object.keys(own)) {
      const pair = own[name];
      if (!Array.isArray(pair) || pair.length !== 2) continue;
      const values = (own[name] = [...(pair as unknown[])]);
      slots.push({ holder: values, key: 0, bytes: measure(values[0]) }, { holder: values, key: 1, bytes: measure(values[1]) });
    }
  }
  const after = change.after;
  if (isRecord(after)) {
    const own = (change.after = copied(after));
    for (const name of Object.keys(own)) slots.push({ holder: own, key: name, bytes: measure(own[name]) });
  }
  return slots;
}

/** A shallow copy with the same prototype (a change converted by name only stays so). */
function copied(object: Record<string, unknown>): Record<string, unknown> {
  const copy = Object.create(Object.getPrototypeOf(object) as object | null) as Record<string, unknown>;
  for (const key of Object.keys(object))
    Object.defineProperty(copy, key, { value: object[key], enumerable: true, writable: true, configurable: true });
  return copy;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null');
}
