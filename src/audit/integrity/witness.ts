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
}

/**
 * Reads the `audit.sealed` lines of CloudWatch exports of the module's stderr: raw JSON lines,
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

function lineObject(line: string): unknown {
  const start = line.indexOf('{');
  if (start < 0) return undefined;
  const value = parse(line.slice(start));
  const message = (value as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? lineObject(message) : value;
}

function sealOf(value: unknown): WitnessedSeal | undefined {
  const line = value as Record<string, unknown> | undefined;
  if (!line || line.event !== AUDIT_EVENTS.sealed) return undefined;
  const { trail, seq, hash, prevHash, rows, lastId, sealedAt } = line;
  if (!Number.isInteger(seq) || typeof hash !== 'string' || typeof prevHash !== 'string') return undefined;
  return {
    trail: String(trail),
    seq: seq as number,
    hash,
    prevHash,
    rows: Number(rows),
    lastId: String(lastId),
    sealedAt: String(sealedAt),
  };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
