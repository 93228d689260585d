import { readFile } from 'node:fs/promises';
import { AUDIT_EVENTS } from '../sinks';

/** A seal as its `audit.sealed` line told it. */
export interface WitnessedSeal {
  /** `database/table` of the trail the seal is of. */
  trail: string;
  seq: number;
  hash: string;
  prevHash: string;
  rows: number;
  lastId: string;
  sealedAt: string;
  /** A retention checkpoint's (`audit.retained`): the month it removed, its rows and the newest seal that covered one. */
  retention?: { month: string; rows: number; covered: string | null };
}

/**
 * Reads the `audit.sealed` and `audit.retained` lines of CloudWatch exports of the module's stderr: raw JSON lines,
 * `<timestamp> <json>` lines (an S3 export), `{"message": "<json>"}` lines, or the
 * `{"events": [{"message": …}]}` document of `aws logs filter-log-events`. Returns every seal
 * seen, by trail (`database/table`) and seq; the same seal written twice (at a restart) counts once.
 *
 * @example
 * const witness = await readWitness(['sealed-2026-11.log']);
 * witness.get('audit/audit_log')?.get(42)?.[0].hash;
 */
export async function readWitness(paths: readonly string[]): Promise<Map<string, Map<number, WitnessedSeal[]>>> {
  const trails = new Map<string, Map<number, WitnessedSeal[]>>();
  const take = (value: unknown) => {
    const seal = sealOf(value);
    if (!seal) return;
    const seals = trails.get(seal.trail) ?? new Map<number, WitnessedSeal[]>();
    trails.set(seal.trail, seals);
    const known = seals.get(seal.seq) ?? [];
    if (!known.some((k) => k.hash === seal.hash && k.prevHash === seal.prevHash)) known.push(seal);
    seals.set(seal.seq, known);
  };
  for (const path of paths) {
    const text = await readFile(path, 'utf8');
    const whole = parse(text.trim());
    if (whole && typeof whole === 'object' && Array.isArray((whole as { events?: unknown }).events)) {
      for (const event of (whole as { events: { message?: unknown }[] }).events) take(lineObject(String(event.message)));
      continue;
    }
    for (const line of text.split('\n')) take(lineObject(line));
  }
  return trails;
}

/**
 * The object a witness line holds: the whole line (after an optional `<timestamp> `) must be one
 * JSON object, and a `message` string is read the same way; JSON at the end of other text (an app
 * log line quoting what a client sent) is never taken.
 */
function lineObject(line: string): unknown {
  const text = line.trim();
  const start = text.startsWith('{') ? 0 : timestampEnd(text);
  if (start < 0 || !text.endsWith('}')) return undefined;
  const value = parse(text.slice(start));
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const message = (value as { message?: unknown }).message;
  return typeof message === 'string' ? lineObject(message) : value;
}

/** Where the JSON of a `<timestamp> {…}` line starts, or -1: the prefix must be one timestamp (ISO-8601 or epoch digits). */
function timestampEnd(text: string): number {
  const match = /^\d[\dTZ:.+-]*\s+\{/.exec(text);
  return match ? match[0].length - 1 : -1;
}

function sealOf(value: unknown): WitnessedSeal | undefined {
  const line = value as Record<string, unknown> | undefined;
  // A retention checkpoint is a link of the chain as a seal is: its line vouches for it the same way.
  if (!line || (line.event !== AUDIT_EVENTS.sealed && line.event !== AUDIT_EVENTS.retained)) return undefined;
  const { trail, seq, hash, prevHash, rows, lastId, sealedAt, month, retainedRows, coveredHash } = line;
  if (!Number.isInteger(seq) || typeof hash !== 'string' || typeof prevHash !== 'string') return undefined;
  const seal: WitnessedSeal = {
    trail: String(trail),
    seq: seq as number,
    hash,
    prevHash,
    rows: Number(rows),
    lastId: String(lastId),
    sealedAt: String(sealedAt),
  };
  if (line.event === AUDIT_EVENTS.retained && typeof month === 'string') {
    seal.retention = { month, rows: Number(retainedRows), covered: typeof coveredHash === 'string' ? coveredHash : null };
  }
  return seal;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
