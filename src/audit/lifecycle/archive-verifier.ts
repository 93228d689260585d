import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { type Client } from 'pg';
import { type ResolvedEntryKey } from '../integrity/entry-auth';
import { EntryChecks } from '../integrity/entry-checks';
import { type SortKey } from '../integrity/row-encoding';
import { type Seal } from '../integrity/seal';
import {
  type Anomaly,
  checkSeal,
  checkSealedRows,
  emptyReport,
  finishReport,
  type LeafRow,
  SealChain,
  type SealChecks,
  type VerifyReport,
} from '../integrity/verify-checks';
import { PersonalChecks } from '../privacy/personal-checks';
import { ARCHIVE_FORMAT, archiveFiles, type ArchiveHeader, fromArchivedSeal, rowEntryDigest, rowLeaf, rowProblem } from './archive-format';
import { archiveErasureEntries, type ArchiveErasureEntry } from './archive-erasure-entries';
import { checkLabel, MonthTally, witnessedCheckpoints } from './archive-label';
import { decodeRetained, mergeRetained, type RetainedRows } from './checkpoint';
import { MONTH_OR_LEGACY_PATTERN } from './legacy-range';

/** What {@link verifyArchive} checks against beyond the archive: the witness, the public key, the entry keys. */
export interface ArchiveVerifyOptions extends SealChecks {
  entryKeys?: readonly ResolvedEntryKey[];
  /** The caller has the database's word that the month is empty: retention, which checks an archive before the month's checkpoint exists. */
  allowEmptyMonth?: boolean;
}

/**
 * The report of an archive: as `audit-verify`'s, with what the archive holds.
 *
 * @example
 * const { report, archive } = await verifyArchive('audit-2026-01.seals.json');
 */
export interface ArchiveVerifyResult {
  report: VerifyReport;
  archive: {
    month: string;
    trail: string;
    /** Rows of the month (by `occurred_at`) in the rows file, as counted here. */
    monthRows: number;
    /** Seqs of the chain segment, or null when the month had no rows. */
    segment: [number, number] | null;
    /** Set when the rows file ends early or is not valid gzip: the rows after it are named missing. */
    damaged: string | null;
    /** Seqs of the month's own retention checkpoints the archive was held to (from the witness or the archive), none when unknown. */
    monthCheckpoints: number[];
  };
}

/** Rows checked together: consecutive seals up to this many (a larger seal alone). */
const BATCH_ROWS = 50_000;

/**
 * The seals file of an archive given either of its two files (or the month's name in a directory).
 *
 * @example
 * sealsPathOf('/archive/audit-2026-01.ndjson.gz'); // '/archive/audit-2026-01.seals.json'
 */
export function sealsPathOf(path: string): string {
  const month = /audit-((?:legacy\.\.)?\d{4}-\d{2})\.(ndjson\.gz|seals\.json)$/.exec(basename(path));
  return month ? join(dirname(path), archiveFiles(month[1]).seals) : path;
}

/**
 * Checks an archive with no database (docs/LIFECYCLE.md, "Archives"): every row of its rows file
 * hashed here and matched to its seal's manifest and Merkle root, the seals' hashes, their links
 * within the segment, their signatures against the public key and their lines in the witness
 * (which must show each of them), entry codes with the entry keys, and erased rows against their
 * commitments and erasure entries. Reads the rows as a stream: memory stays within one batch.
 * Throws when the archive cannot be checked at all (no seals file, not this format).
 *
 * @example
 * const { report } = await verifyArchive('/archive/audit-2026-01.seals.json', { publicKey, witness });
 * report.anomalyCount; // 0 when clean
 */
export async function verifyArchive(path: string, options: ArchiveVerifyOptions = {}): Promise<ArchiveVerifyResult> {
  const sealsPath = sealsPathOf(path);
  const header = JSON.parse(await readFile(sealsPath, 'utf8')) as ArchiveHeader;
  if (
    header?.format !== ARCHIVE_FORMAT ||
    !Array.isArray(header.seals) ||
    typeof header.rowsFile !== 'string' ||
    !MONTH_OR_LEGACY_PATTERN.test(String(header.month))
  ) {
    throw new Error(`${sealsPath} is not an archive's seals file (format ${ARCHIVE_FORMAT})`);
  }
  const seals = header.seals.map(fromArchivedSeal);
  const checkpoints = (header.checkpoints ?? []).map(fromArchivedSeal);
  const report = emptyReport();
  const found: Anomaly[] = [];
  const entries = new EntryChecks(options.entryKeys ?? null);
  const personal = new PersonalChecks();
  const retained: RetainedRows = new Map();
  // The month's own checkpoints, by seq: each says how many rows the month held and its newest seal.
  const ownCheckpoints = new Map(witnessedCheckpoints(options.witness, header.month).map((c) => [c.seq, c]));
  /** A checkpoint's rows taken as gone; one of the archive's own month (made after it) excuses none of them. */
  const retire = (checkpoint: Seal) => {
    if (checkpoint.retention?.month !== header.month) return mergeRetained(retained, decodeRetained(checkpoint.manifest));
    const { rows, covered } = checkpoint.retention;
    if (!ownCheckpoints.has(checkpoint.seq)) {
      ownCheckpoints.set(checkpoint.seq, { seq: checkpoint.seq, rows, covered: covered?.toString('hex') ?? null });
    }
  };
  // Checkpoints outside the segment: each checked on its own (hash, signature, witness), then its rows taken as gone.
  for (const checkpoint of checkpoints) {
    checkSeal(checkpoint, null, options, (a) => found.push(a));
    checkWitnessed(checkpoint, options, (a) => found.push(a));
    retire(checkpoint);
  }
  const chain = new SealChain(options, entries, seals[0]?.seq ?? 1);
  const sealed: { seal: Seal; found: Anomaly[] }[] = [];
  for (const seal of seals) {
    const { found: sealFound, checkpoint } = chain.next(seal);
    checkWitnessed(seal, options, (a) => sealFound.push(a));
    if (checkpoint) {
      retire(seal);
      found.push(...sealFound);
    } else sealed.push({ seal, found: sealFound });
  }
  report.sealsVerified = sealed.length;
  const tally = new MonthTally(header.month, sealed.length);
  // Seals are checked in batches, in seq order, as their rows arrive (the file is in sealing order).
  let current = 0;
  let batchStart = 0;
  let rows: LeafRow[] = [];
  /** Checks the seals from the batch's start up to `end` (exclusive) against the rows read since. */
  const flush = (end: number) => {
    if (end <= batchStart) return;
    const batch = sealed.slice(batchStart, end);
    const perSeal = batch.map((b) => b.found);
    checkSealedRows(
      batch.map((b) => b.seal),
      rows,
      perSeal,
      retained,
    );
    for (const sealFound of perSeal) found.push(...sealFound);
    rows = [];
    batchStart = end;
  };
  const endOf = (seal: Seal): SortKey => ({ tx: seal.lastTx === null ? null : BigInt(seal.lastTx), id: seal.lastId });
  /** The index of the first seal whose range reaches `key` (seals end in sealing order), or `sealed.length` past the last. */
  const sealIndexOf = (key: SortKey): number => {
    let low = 0;
    let high = sealed.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (before(endOf(sealed[middle].seal), key)) low = middle + 1;
      else high = middle;
    }
    return low;
  };
  let damaged: string | null = null;
  try {
    let at = 0;
    for await (const chunk of linesOf(join(dirname(sealsPath), basename(header.rowsFile)))) {
      for (const line of chunk) {
        at += 1;
        if (line === '') continue;
        const fields = parseRow(line, at);
        const id = fields[0] as string;
        const tx = fields[1] === null ? null : BigInt(fields[1]);
        if (sealed.length === 0) {
          throw Object.assign(new Error('the archive has rows but no seal: it cannot be checked'), { code: 'AUDIT_ARCHIVE_NO_SEAL' });
        }
        // A seal whose last row sorts before this one is complete: its rows are all read.
        while (current < sealed.length && before(endOf(sealed[current].seal), { tx, id })) {
          current += 1;
          // The last seal stays in the batch: rows after it are named there.
          if (rows.length >= BATCH_ROWS && current < sealed.length) flush(current);
        }
        // By the row's own key, not its place in the file: the file's line order is not sealed.
        tally.count(fields[2], sealIndexOf({ tx, id }));
        if (fields[14] !== null) {
          const personalFound = personal.judge(
            id,
            JSON.stringify([fields[6], fields[8], fields[9], fields[16], fields[14]]),
            fields[2],
            tx,
          );
          if (personalFound) found.push(personalFound);
        }
        const extra = entries.report.checked ? [fields[15], rowEntryDigest(fields)] : [fields[15] !== null];
        rows.push({ id, tx, leaf: rowLeaf(fields), problem: rowProblem(fields), forged: entries.judge(id, tx, extra) });
        report.rowsVerified += 1;
      }
    }
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT' || (error as { code?: string }).code === 'EACCES') throw error;
    if (!(error as { code?: string }).code?.startsWith('Z_') && !/unexpected end of file/i.test((error as Error).message)) throw error;
    damaged = `${header.rowsFile} is damaged after ${report.rowsVerified} rows (${(error as Error).message}): the rows after are missing`;
  }
  flush(sealed.length);
  found.push(...chain.unwitnessed('the archive').filter((a) => inSegment(a.seal, seals)));
  found.push(
    ...checkLabel({
      header,
      sealsPath,
      sealed: sealed.map((s) => s.seal),
      tally,
      checkpoints: [...ownCheckpoints.values()],
      witness: options.witness,
      allowEmptyMonth: options.allowEmptyMonth,
    }),
  );
  // An archive holds a month's rows: an erasure's other rows lie in other months, so one short of rows is not named here.
  const carried = archiveErasureEntries(
    header,
    options.entryKeys ?? null,
    entries.report.boundary,
    (a) => found.push(a),
    (erasure, counts) => personal.erasedByMonth(erasure, counts),
    (erasure) => personal.erasedIds(erasure),
  );
  await personal.finish(erasureEntries(carried.entries), header.table, (a) => found.push(a), { whole: false, forged: carried.forged });
  const final = finishReport({ ...report, entryAuth: entries.report, erasure: personal.report }, found);
  return {
    report: final,
    archive: {
      month: header.month,
      trail: header.trail,
      monthRows: tally.rows,
      segment: seals.length ? [seals[0].seq, seals[seals.length - 1].seq] : null,
      damaged,
      monthCheckpoints: [...ownCheckpoints.keys()].sort((a, b) => a - b),
    },
  };
}

/**
 * The lines of a gzip file, read and inflated a megabyte at a time: each chunk's whole lines together.
 *
 * @example
 * let count = 0;
 * for await (const lines of linesOf('/archive/audit-2026-01.ndjson.gz')) count += lines.length;
 */
export async function* linesOf(path: string): AsyncGenerator<string[]> {
  const input = createReadStream(path, { highWaterMark: 1 << 20 });
  const gunzip = createGunzip({ chunkSize: 1 << 20 });
  input.on('error', (error) => gunzip.destroy(error));
  input.pipe(gunzip);
  let rest: Buffer | null = null;
  for await (const chunk of gunzip as AsyncIterable<Buffer>) {
    const data: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let end = data.indexOf(10); end !== -1; end = data.indexOf(10, start)) {
      lines.push(data.toString('utf8', start, end));
      start = end + 1;
    }
    rest = start < data.length ? data.subarray(start) : null;
    yield lines;
  }
  if (rest) yield [rest.toString('utf8')];
}

/** Whether `a` sorts before `b` in sealing order. */
function before(a: SortKey, b: SortKey): boolean {
  if (a.tx !== b.tx) return a.tx === null ? true : b.tx === null ? false : a.tx < b.tx;
  return a.id < b.id;
}

/** A seal's line must be in the witness when one is given: an archive is checked against it alone. */
function checkWitnessed(seal: Seal, options: SealChecks, add: (a: Anomaly) => void): void {
  if (options.witness && !options.witness.has(seal.seq)) {
    add({ kind: 'seal_witness_mismatch', seal: seal.seq, detail: 'the witness has no line of it' });
  }
}

function inSegment(seq: number | undefined, seals: Seal[]): boolean {
  return seq !== undefined && seals.length > 0 && seq >= seals[0].seq && seq <= seals[seals.length - 1].seq;
}

function parseRow(line: string, at: number): (string | null)[] {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    value = null;
  }
  const fields = (Array.isArray(value) ? value : []) as unknown[];
  let texts = fields.length === 17 && typeof fields[0] === 'string';
  for (let i = 1; texts && i < 17; i++) texts = fields[i] === null || typeof fields[i] === 'string';
  if (!texts) {
    throw Object.assign(new Error(`line ${at} of the rows file is not a row of 17 text fields`), { code: 'AUDIT_ARCHIVE_ROW' });
  }
  if (fields[1] !== null && !/^\d+$/.test(fields[1] as string)) {
    throw Object.assign(new Error(`line ${at} of the rows file has a tx that is not a number`), { code: 'AUDIT_ARCHIVE_ROW' });
  }
  return fields as (string | null)[];
}

/** The archive's erasure entries as `PersonalChecks.finish` reads them from a database. */
function erasureEntries(rows: ArchiveErasureEntry[]): Client {
  // PersonalChecks reads the entries with one query; offline they come from the archive.
  return { query: async () => ({ rows }) } as unknown as Client;
}
