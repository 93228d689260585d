import { basename } from 'node:path';
import { type Seal } from '../integrity/seal';
import { type Anomaly } from '../integrity/verify-checks';
import { type WitnessedSeal } from '../integrity/witness';
import { archiveFiles, type ArchiveHeader } from './archive-format';
import { monthSpan } from './legacy-range';

/**
 * The rows of an archive's month (by `occurred_at`), counted as the rows file is read, and whether
 * the first and the last seal of the segment hold one: the writer's segment runs from the seal
 * of the month's first row to the seal of its last.
 *
 * @example
 * const tally = new MonthTally('2026-01', sealCount);
 * tally.count(fields[2], current); // for each row, `current` the index of the seal whose range holds it
 */
export class MonthTally {
  rows = 0;
  firstHolds = false;
  lastHolds = false;
  private readonly low: number;
  private readonly high: number;

  constructor(
    month: string,
    private readonly seals: number,
  ) {
    const span = monthSpan(month);
    this.low = span.from * 1000;
    this.high = span.to * 1000;
  }

  /** Counts a row given its `occurred_at` in µs (as text) and the index of the seal whose range holds it. */
  count(occurredUs: string | null, seal: number): void {
    const us = Number(occurredUs);
    if (occurredUs === null || !(us >= this.low && us < this.high)) return;
    this.rows += 1;
    if (seal === 0) this.firstHolds = true;
    if (seal === this.seals - 1) this.lastHolds = true;
  }
}

/** What an archive's label is checked against: its sealed seals, its rows' tally and what is known of its month. */
export interface LabelEvidence {
  header: ArchiveHeader;
  sealsPath: string;
  /** The segment's seals that seal rows (not checkpoints), in seq order. */
  sealed: readonly Seal[];
  tally: MonthTally;
  /** Retention checkpoints of the archive's own month, from the archive (checked apart) or the witness. */
  checkpoints: readonly { seq: number; rows: number; covered: string | null }[];
  /** The witness's lines, when one is given: they name the trail they are of. */
  witness?: Map<number, WitnessedSeal[]>;
  /** The caller has the database's word that the month is empty (retention, before its checkpoint exists). */
  allowEmptyMonth?: boolean;
}

/**
 * Checks the month and the trail an archive names against what is signed or witnessed
 * (docs/LIFECYCLE.md, "What the offline check proves"): the file names, the rows of the month
 * (at each end of the segment, and as many as the seals file says), the month's retention
 * checkpoint (its rows and the newest seal that covered one) and the witness's trail. Each
 * disagreement is an `archive_mislabelled` anomaly, named by the month the archive claims.
 *
 * @example
 * for (const anomaly of checkLabel({ header, sealsPath, sealed, tally, checkpoints, witness })) found.push(anomaly);
 */
export function checkLabel(evidence: LabelEvidence): Anomaly[] {
  const { header, sealed, tally } = evidence;
  const found: Anomaly[] = [];
  const add = (detail: string) => found.push({ kind: 'archive_mislabelled', month: header.month, detail });
  const files = archiveFiles(header.month);
  const name = basename(evidence.sealsPath);
  if (/^audit-.*\.seals\.json$/.test(name) && name !== files.seals) add(`its seals file is named ${name}, not ${files.seals}`);
  if (basename(header.rowsFile) !== files.rows) add(`its rows file is named ${basename(header.rowsFile)}, not ${files.rows}`);
  if (header.monthRows !== tally.rows) {
    add(`the seals file says ${header.monthRows} rows of the month, the rows file holds ${tally.rows}`);
  }
  if (sealed.length > 0 && (!tally.firstHolds || !tally.lastHolds)) {
    const ends = [!tally.firstHolds && `first (seal ${sealed[0].seq})`, !tally.lastHolds && `last (seal ${sealed.at(-1)!.seq})`];
    add(`the ${ends.filter(Boolean).join(' and the ')} seal of the segment holds no row of the month`);
  }
  if (tally.rows === 0 && evidence.checkpoints.length === 0 && !evidence.allowEmptyMonth) {
    add('the archive holds no row of the month, and no retention checkpoint of the month says it had none');
  }
  const covered = tally.rows > 0 ? (sealed.at(-1)?.hash.toString('hex') ?? null) : null;
  for (const checkpoint of evidence.checkpoints) {
    if (checkpoint.rows !== tally.rows || checkpoint.covered !== covered) {
      add(
        `the month's retention checkpoint (seal ${checkpoint.seq}) removed ${checkpoint.rows} rows, the newest covered by ` +
          `${checkpoint.covered ?? 'no seal'}; the archive holds ${tally.rows}, the newest covered by ${covered ?? 'no seal'}`,
      );
    }
  }
  const trails = new Set([...(evidence.witness?.values() ?? [])].flat().map((seal) => seal.trail));
  for (const trail of trails) {
    if (trail !== header.trail) add(`the archive names trail ${header.trail}; its seals were checked against the witness of ${trail}`);
  }
  return found;
}

/**
 * The retention checkpoints of `month` that the witness shows.
 *
 * @example
 * witnessedCheckpoints(witness, '2026-01'); // [{ seq: 42, rows: 1200, covered: 'ab…' }]
 */
export function witnessedCheckpoints(
  witness: Map<number, WitnessedSeal[]> | undefined,
  month: string,
): { seq: number; rows: number; covered: string | null }[] {
  const found: { seq: number; rows: number; covered: string | null }[] = [];
  for (const seals of witness?.values() ?? []) {
    for (const seal of seals)
      if (seal.retention?.month === month) {
        found.push({ seq: seal.seq, rows: seal.retention.rows, covered: seal.retention.covered });
      }
  }
  return found;
}
