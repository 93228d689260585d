import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { type Client } from 'pg';
import { quoteTablePath } from '../audit-insert-sql';
import { compareKeys, keyRange, type RowKey, SEALED_COLUMNS_SQL, type SortKey } from '../integrity/row-encoding';
import { type Seal } from '../integrity/seal';
import { SEAL_COLUMNS_SQL, sealTableOf, toSeal } from '../integrity/seal-store';
import { PIN_SEARCH_PATH_SQL } from '../integrity/search-path';
import { ERASURE_ACTION } from '../privacy/erasure';
import { type ArchiveLockCommand, withArchiveLock } from '../privacy/archive-lock';
import { parsePersonal } from '../privacy/personal-values';
import { type ArchiveFiles, boundedArchiveFiles } from './archive-files';
import { ARCHIVE_COLUMNS, ARCHIVE_FORMAT, archiveFiles, type ArchiveHeader, toArchivedSeal } from './archive-format';
import { decodeRetained } from './checkpoint';
import { type SealHead, sealHeads } from './month-analysis';
import { legacyBoundOf, monthSpan, retentionMonthSql } from './legacy-range';

/** Rows a cursor returns at a time. */
const FETCH = 5_000;

/** What to archive, and where. */
export interface ArchiveRun {
  /** The audit table with its schema (`public.audit_log`). */
  table: string;
  /** `YYYY-MM`. */
  month: string;
  /** The directory the two files are written to (made if absent). */
  out: string;
  /** `database/table`, as the witness names the trail. */
  trail: string;
  /** The deadline of each file call on `out` (`--timeout-ms`): past it, `AUDIT_DISK_TIMEOUT`. */
  timeoutMs: number;
  /** The command its lock names (default `audit-archive`). */
  command?: ArchiveLockCommand;
}

/**
 * What was written: the two files' paths and the header; or why nothing was (`refused`: the
 * month is not wholly sealed; or, with its `code`, the month was removed by retention
 * (`AUDIT_MONTH_RETIRED`), or an archive of the month is in place that this one must not replace:
 * it holds more of the month's rows (`AUDIT_ARCHIVE_FEWER_ROWS`), or its seals file is not one of
 * the month this version reads (`AUDIT_ARCHIVE_EXISTS`)).
 */
export type ArchiveResult =
  | { written: true; rowsPath: string; sealsPath: string; header: ArchiveHeader }
  | { written: false; refused: string; code?: ArchiveRefusal };

/** Why an archive was not written, when the month's rows cannot make it (see {@link ArchiveResult}). */
export type ArchiveRefusal = 'AUDIT_MONTH_RETIRED' | 'AUDIT_ARCHIVE_FEWER_ROWS' | 'AUDIT_ARCHIVE_EXISTS';

/**
 * Archives one month (docs/LIFECYCLE.md, "Archives"): in one repeatable-read snapshot, streams
 * every row of the seals whose ranges hold the month's rows (gzip NDJSON, in sealing order, the
 * sealed columns as the verifier encodes them) and writes those seals, the retention checkpoints
 * that removed rows of them and the erasure entries of their erased rows beside it. Refuses a
 * month with a row after the newest seal, and a month retention removed (it has a retention
 * checkpoint: the database holds none of its rows, its archive is the only copy). It never renames
 * over an archive of the month in place that holds more of the month's rows than the database
 * does now, nor over a seals file it cannot read as the month's: the archive in place is kept, and
 * the result says why. The whole run, from before its snapshot until the files
 * are in place, holds the archive's lock (`<seals file>.lock`, `withArchiveLock`, the lock
 * `audit-erase --archive-dir` takes): when another run holds it, rejects with
 * `AUDIT_ARCHIVE_LOCKED`, nothing written. Memory stays within one batch of rows and the seals'
 * manifests (24 bytes a row). Files are written under temporary names (created anew, owner-only),
 * fsynced, renamed when complete (the rows file, the directory fsynced, then the seals file: a
 * seals file in place has its rows file), and the directory fsynced (with those `mkdir` made):
 * when it resolves, the archive survives a power loss, so retention may drop the month. When the
 * seals file cannot be renamed into place and no archive of the month was there before, the rows
 * file just renamed is removed: a failed run leaves no rows file without its seals file.
 * Every file call has the deadline `run.timeoutMs` ({@link boundedArchiveFiles}): a disk that does
 * not answer rejects with `AUDIT_DISK_TIMEOUT`, the transaction is rolled back and nothing is renamed.
 * `injected` replaces the disk's calls (a test's).
 *
 * @example
 * const result = await writeArchive(client, { table: 'public.audit_log', month: '2026-01', out: '/archive', trail: 'app/audit_log', timeoutMs: 30_000 });
 */
export async function writeArchive(client: Client, run: ArchiveRun, injected?: ArchiveFiles): Promise<ArchiveResult> {
  const disk = injected ?? boundedArchiveFiles(run.out, run.timeoutMs);
  const made = await disk.mkdir(run.out);
  // The archive's lock from before the snapshot until the files are in place: an erasure that commits
  // meanwhile finds this archive being written when it lists the directory (docs/LIFECYCLE.md, "Archives and erasure").
  const sealsPath = join(run.out, archiveFiles(run.month).seals);
  return withArchiveLock(disk, sealsPath, () => writeLocked(client, run, disk, made), run.command ?? 'audit-archive');
}

/** {@link writeArchive} under the archive's lock, on `disk` (the directory made, `made` the first directory `mkdir` made). */
async function writeLocked(client: Client, run: ArchiveRun, disk: ArchiveFiles, made: string | undefined): Promise<ArchiveResult> {
  const table = quoteTablePath(run.table);
  const sealTable = sealTableOf(run.table);
  const span = monthSpan(run.month);
  const from = span.from === -Infinity ? '-infinity' : new Date(span.from).toISOString();
  const to = new Date(span.to).toISOString();
  const query = async (sql: string, parameters?: unknown[]) => (await client.query(sql, parameters)).rows as Record<string, unknown>[];
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(PIN_SEARCH_PATH_SQL);
    // The month's own checkpoint, or that of a legacy range holding it (a last day, on or after the month's first).
    const [retired] = await query(
      `SELECT s.seq::text AS seq, ${retentionMonthSql('s.retention_month')} AS month FROM ${sealTable} AS s
       WHERE s.retention_month IS NOT NULL
         AND (${retentionMonthSql('s.retention_month')} OPERATOR(pg_catalog.=) $1
              OR (pg_catalog.date_part('day', s.retention_month) OPERATOR(pg_catalog.<>) 1 AND s.retention_month >= $2::pg_catalog.date))
       ORDER BY s.seq LIMIT 1`,
      [run.month, legacyBoundOf(run.month) === null ? `${run.month}-01` : null],
    );
    if (retired) {
      const checkpoint =
        retired.month === run.month
          ? `its retention checkpoint is seal ${retired.seq as string}`
          : `it lay in the legacy partition, whose retention checkpoint ${retired.month as string} is seal ${retired.seq as string}`;
      return {
        written: false,
        code: 'AUDIT_MONTH_RETIRED',
        refused:
          `${run.month} was removed by retention (${checkpoint}): the database holds none ` +
          `of its rows, and the archive retention wrote of it is the month's only copy; nothing written`,
      };
    }
    const seals = (await sealHeads(query, sealTable)).filter((head) => !head.checkpoint);
    const inMonth = (p: number) => `l.occurred_at >= $${p}::timestamptz AND l.occurred_at < $${p + 1}::timestamptz`;
    const newest = seals.at(-1);
    const after = newest ? keyRange(keyOf(newest.last), null) : { where: 'TRUE', parameters: [] };
    const [{ unsealed }] = await query(
      `SELECT count(*)::int AS unsealed FROM ${table} AS l WHERE ${after.where} AND ${inMonth(after.parameters.length + 1)}`,
      [...after.parameters, from, to],
    );
    if ((unsealed as number) > 0) {
      const since = newest
        ? `after the newest seal (seal ${newest.seq})`
        : 'and no seal exists yet (integrity off, or the sealer has not run)';
      return { written: false, refused: `${run.month} is not wholly sealed: ${unsealed as number} of its rows are ${since}` };
    }
    const edge = async (order: 'ASC NULLS FIRST' | 'DESC NULLS LAST') => {
      const [row] = await query(
        `SELECT l.tx::text AS tx, l.id::text AS id FROM ${table} AS l WHERE ${inMonth(1)} ORDER BY l.tx ${order}, l.id ${order.slice(0, 4)} LIMIT 1`,
        [from, to],
      );
      return row && { tx: row.tx === null ? null : BigInt(row.tx as string), id: row.id as string };
    };
    const [first, last] = [await edge('ASC NULLS FIRST'), await edge('DESC NULLS LAST')];
    const range = first && last ? [holder(seals, first), holder(seals, last)] : null;
    const segment = range
      ? ((
          await query(`SELECT ${SEAL_COLUMNS_SQL} FROM ${sealTable} AS s WHERE s.seq >= $1 AND s.seq <= $2 ORDER BY s.seq`, [
            range[0].seq,
            range[1].seq,
          ])
        ).map(toSeal) as Seal[])
      : [];
    const before = range ? seals.filter((s) => s.seq < range[0].seq).at(-1) : undefined;
    const files = archiveFiles(run.month);
    const rowsPath = join(run.out, files.rows);
    const sealsPath = join(run.out, files.seals);
    const partial = `${rowsPath}.partial`;
    let counts = { rows: 0, monthRows: 0, erasures: new Set<string>() };
    try {
      counts = await writeRows(
        client,
        table,
        range && { after: before ? toRowKey(before.last) : null, upTo: toRowKey(range[1].last) },
        run,
        { disk, path: partial },
      );
      const header: ArchiveHeader = {
        format: ARCHIVE_FORMAT,
        month: run.month,
        trail: run.trail,
        table: run.table,
        createdAt: new Date().toISOString(),
        rowsFile: files.rows,
        columns: ARCHIVE_COLUMNS,
        rows: counts.rows,
        monthRows: counts.monthRows,
        seals: segment.map(toArchivedSeal),
        checkpoints: await checkpointsOf(query, sealTable, segment),
        ...(await erasuresOf(query, table, counts.erasures)),
      };
      const seals = await disk.create(`${sealsPath}.partial`);
      try {
        await seals.write(Buffer.from(`${JSON.stringify(header, null, 1)}\n`));
        await seals.sync();
      } finally {
        await seals.close();
      }
      // Under the lock, the archive in place (if any) stays as read until the renames.
      const existing = await disk.readText(sealsPath);
      const kept = keptArchive(existing, sealsPath, run.month, counts.monthRows);
      if (kept) return { written: false, ...kept };
      await disk.rename(partial, rowsPath);
      try {
        // The rows file's rename on the disk before the seals file's: after a power loss, a seals file in place has its rows.
        await disk.syncDirectory(run.out);
        await disk.rename(`${sealsPath}.partial`, sealsPath);
      } catch (error) {
        // A new archive: the rows file just renamed goes too, never left in DIR without its seals file.
        if (existing === null) await disk.discard(rowsPath);
        throw error;
      }
      await disk.syncDirectory(run.out);
      for (const parent of madeParents(run.out, made)) await disk.syncDirectory(parent);
      return { written: true, rowsPath, sealsPath, header };
    } finally {
      await disk.discard(partial);
      await disk.discard(`${sealsPath}.partial`);
    }
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/**
 * Why the archive in place at `sealsPath` (its text `existing`, null: none) must not be replaced by
 * one holding `monthRows` of `month`'s rows, or null when it may be: it is not a seals file of the
 * month this version reads, or it holds more of the month's rows (the database lost rows since, or
 * the month was removed: the archive in place is their only copy).
 */
function keptArchive(
  existing: string | null,
  sealsPath: string,
  month: string,
  monthRows: number,
): { code: ArchiveRefusal; refused: string } | null {
  if (existing === null) return null;
  let header: Partial<ArchiveHeader> | null;
  try {
    header = JSON.parse(existing) as Partial<ArchiveHeader> | null;
  } catch {
    header = null;
  }
  if (header?.format !== ARCHIVE_FORMAT || header.month !== month || !Number.isSafeInteger(header.monthRows)) {
    return {
      code: 'AUDIT_ARCHIVE_EXISTS',
      refused: `${sealsPath} is in place and is not a seals file of ${month} this version reads; nothing written: move it and its rows file away to archive the month anew`,
    };
  }
  if ((header.monthRows as number) > monthRows) {
    return {
      code: 'AUDIT_ARCHIVE_FEWER_ROWS',
      refused:
        `${sealsPath} holds ${header.monthRows as number} rows of ${month}, the database ${monthRows} now: the archive in place is kept, ` +
        'nothing written (move it away only to archive the month anew from what the database holds)',
    };
  }
  return null;
}

/** The directories holding the entries of those `mkdir` made (`made`, the first, up to `out`), nearest first. */
function madeParents(out: string, made: string | undefined): string[] {
  if (made === undefined) return [];
  const parents: string[] = [];
  for (let dir = resolve(out); dir !== dirname(resolve(made)) && dir !== dirname(dir); dir = dirname(dir)) parents.push(dirname(dir));
  return parents;
}

function keyOf(key: SortKey): RowKey {
  return { tx: key.tx === null ? null : String(key.tx), id: key.id };
}
const toRowKey = keyOf;

/** The seal whose range holds `key`: the first (in seq order) whose last row is at or after it. */
function holder(seals: readonly SealHead[], key: SortKey): SealHead {
  let low = 0;
  let high = seals.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (compareKeys(seals[middle].last, key) >= 0) high = middle;
    else low = middle + 1;
  }
  return seals[low];
}

/** Streams the rows after `after` up to `upTo` in sealing order into the gzip file; counts them, the month's, and the erasures named. */
async function writeRows(
  client: Client,
  table: string,
  range: { after: RowKey | null; upTo: RowKey } | null,
  run: ArchiveRun,
  target: { disk: ArchiveFiles; path: string },
): Promise<{ rows: number; monthRows: number; erasures: Set<string> }> {
  const file = await target.disk.create(target.path);
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= file.close());
  const gzip = createGzip();
  const sink = new Writable({
    write: (chunk: Buffer, _encoding, done) => void file.write(chunk).then(() => done(), done),
    final: (done) =>
      void file
        .sync()
        .then(close)
        .then(() => done(), done),
  });
  const piped = pipeline(gzip, sink);
  piped.catch(() => undefined);
  try {
    return await streamRows(client, table, range, run, { gzip, piped });
  } finally {
    gzip.destroy();
    await close().catch(() => undefined);
  }
}

/** {@link writeRows}' cursor loop: the rows into `gzip`, waiting for its drain (or the file's failure). */
async function streamRows(
  client: Client,
  table: string,
  range: { after: RowKey | null; upTo: RowKey } | null,
  run: ArchiveRun,
  { gzip, piped }: { gzip: ReturnType<typeof createGzip>; piped: Promise<void> },
): Promise<{ rows: number; monthRows: number; erasures: Set<string> }> {
  const counts = { rows: 0, monthRows: 0, erasures: new Set<string>() };
  const span = monthSpan(run.month);
  const low = span.from === -Infinity ? null : BigInt(span.from) * 1000n;
  const high = BigInt(span.to) * 1000n;
  if (range) {
    const { where, parameters } = keyRange(range.after, range.upTo);
    await client.query(
      `DECLARE archive_rows NO SCROLL CURSOR FOR SELECT ${SEALED_COLUMNS_SQL}, l.auth_code, l.personal
       FROM ${table} AS l WHERE ${where} ORDER BY l.tx ASC NULLS FIRST, l.id ASC`,
      parameters,
    );
    for (;;) {
      const { rows } = await client.query<(string | null)[]>({ text: `FETCH ${FETCH} FROM archive_rows`, rowMode: 'array' });
      let text = '';
      for (const row of rows) {
        text += `${JSON.stringify(row)}\n`;
        const us = row[2];
        if (us !== null && (low === null || BigInt(us) >= low) && BigInt(us) < high) counts.monthRows += 1;
        if (row[14] !== null) {
          const personal = parsePersonal(row[16]);
          if (personal && 'erased' in personal) counts.erasures.add(personal.erased);
        }
      }
      counts.rows += rows.length;
      if (!gzip.write(text)) {
        const drained = once(gzip, 'drain');
        drained.catch(() => undefined);
        await Promise.race([drained, piped]);
      }
      if (rows.length < FETCH) break;
    }
    await client.query('CLOSE archive_rows');
  }
  gzip.end();
  await piped;
  return counts;
}

/** The retention checkpoints (outside the segment) that removed rows of the segment's seals. */
async function checkpointsOf(
  query: (sql: string, p?: unknown[]) => Promise<Record<string, unknown>[]>,
  sealTable: string,
  segment: Seal[],
) {
  if (segment.length === 0) return [];
  const seqs = new Set(segment.map((s) => s.seq));
  const rows = await query(
    `SELECT ${SEAL_COLUMNS_SQL} FROM ${sealTable} AS s WHERE s.retention_month IS NOT NULL AND (s.seq < $1 OR s.seq > $2) ORDER BY s.seq`,
    [segment[0].seq, segment[segment.length - 1].seq],
  );
  return rows
    .map(toSeal)
    .filter((checkpoint) => [...decodeRetained(checkpoint.manifest).keys()].some((seq) => seqs.has(seq)))
    .map(toArchivedSeal);
}

/**
 * The `audit_erasure` entries of the erasures named by erased rows of the archive: the summary
 * (`erasures`) and each entry whole (`erasureEntries`, its row as a line of the rows file), so
 * that the offline check can judge its entry code.
 */
async function erasuresOf(query: (sql: string, p?: unknown[]) => Promise<Record<string, unknown>[]>, table: string, named: Set<string>) {
  if (named.size === 0) return { erasures: [], erasureEntries: [] };
  const rows = await query(
    `SELECT l.changes -> 'erasure' ->> 'id' AS erasure, l.changes -> 'erasure' ->> 'rows' AS rows, ${SEALED_COLUMNS_SQL}, l.auth_code AS c15, l.personal AS c16
     FROM ${table} AS l WHERE l.action OPERATOR(pg_catalog.=) $1`,
    [ERASURE_ACTION],
  );
  const chosen = rows.filter((row) => named.has(row.erasure as string));
  return {
    erasures: chosen.map((row) => ({ entry: row.c0 as string, erasure: row.erasure as string, rows: Number(row.rows ?? 0) })),
    erasureEntries: chosen.map((row) => Array.from({ length: 17 }, (_, i) => (row[`c${i}`] ?? null) as string | null)),
  };
}
