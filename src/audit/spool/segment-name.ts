const SEGMENT = /^audit-(\d{13})-(\d{6})(?:-([0-9a-f]{12}))?\.ndjson$/;

/** What a segment's file name says: when it was begun, its number, and its owner (none: an older version's). */
export interface SegmentName {
  time: string;
  owner: string | null;
}

/**
 * Parses `audit-<ms>-<n>-<owner>.ndjson` (or an older version's `audit-<ms>-<n>.ndjson`).
 *
 * @example
 * parseSegmentName('audit-1732700000000-000003-0a1b2c3d4e5f.ndjson'); // { time: '1732700000000', owner: '0a1b2c3d4e5f' }
 */
export function parseSegmentName(name: string): SegmentName | null {
  const match = SEGMENT.exec(name);
  return match ? { time: match[1], owner: match[3] ?? null } : null;
}

/**
 * The name of an owner's segment; names sort in the order their entries were spooled.
 *
 * @example
 * segmentName(String(Date.now()), 3, owner.id); // 'audit-1732700000000-000003-0a1b2c3d4e5f.ndjson'
 */
export function segmentName(time: string, number: number, owner: string): string {
  return `audit-${time.padStart(13, '0')}-${String(number % 1_000_000).padStart(6, '0')}-${owner}.ndjson`;
}
