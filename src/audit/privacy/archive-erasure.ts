import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import { type ArchiveFiles } from '../lifecycle/archive-files';
import { ARCHIVE_FORMAT, archiveFiles, type ArchiveHeader } from '../lifecycle/archive-format';
import { entryCount } from '../lifecycle/archive-erasure-entries';
import { linesOf } from '../lifecycle/archive-verifier';
import { type ErasurePart, type ErasureResult, type ErasureSubject } from './erasure';
import { archivesBeingWritten, withArchiveLock } from './archive-lock';
import { ERASED } from './personal-values';
import { archiveRowsDigest } from './archive-rows-digest';

/** A row of an archive that an erasure matched, and what became (or would become) of it, as `audit_log_erase` answers. */
export interface ArchivedRowState {
  id: string;
  state: 'erased' | 'already_erased' | 'not_erasable';
}

/**
 * One archive pair of the directory and the subject's rows in it, by the subject's stored form
 * (the same index as the forms given to {@link planArchiveErasure}).
 *
 * @example
 * const plans = await planArchiveErasure('/var/archive/audit', [['u-42', null, null]]);
 * plans[0].byForm[0].filter((r) => r.state === 'erased').length; // rows to erase in that archive
 */
export interface ArchivePlan {
  /** The archive's `month` (as its seals file names it, `2026-01` or `legacy..2026-11`). */
  month: string;
  sealsPath: string;
  rowsPath: string;
  byForm: ArchivedRowState[][];
}

const SEALS_FILE = /^audit-(?:legacy\.\.)?\d{4}-\d{2}\.seals\.json$/;
const ROWS_FILE = /^audit-((?:legacy\.\.)?\d{4}-\d{2})\.ndjson\.gz$/;
const ERASED_PREFIX = '{"erased":';

/**
 * Reads every archive pair in `dir` (its `audit-*.seals.json` files and their rows files) and
 * finds the rows of each stored form of the subject, as `audit_log_erase` finds them in the
 * table: a user's rows by `user_id`; an entity's by `entity_type` and `entity_id`, or by a change
 * of it in `changes.entities` (its id as text, or as a number). Changes nothing. Throws when an
 * archive cannot be read (nothing is then erased anywhere).
 *
 * @example
 * const plans = await planArchiveErasure('/var/archive/audit', subjectForms({ userId: 'u-42' }, null, key));
 */
export async function planArchiveErasure(dir: string, forms: readonly ErasureSubject[]): Promise<ArchivePlan[]> {
  const names = (await readdir(dir)).filter((name) => SEALS_FILE.test(name)).sort();
  const plans: ArchivePlan[] = [];
  for (const name of names) {
    const sealsPath = join(dir, name);
    const header = await readHeader(sealsPath);
    const plan: ArchivePlan = { month: header.month, sealsPath, rowsPath: join(dir, header.rowsFile), byForm: forms.map(() => []) };
    for await (const chunk of linesOf(plan.rowsPath)) {
      for (const line of chunk) {
        if (line === '') continue;
        const fields = JSON.parse(line) as (string | null)[];
        const form = forms.findIndex((subject) => matches(fields, subject));
        if (form >= 0) plan.byForm[form].push({ id: fields[0] as string, state: stateOf(fields) });
      }
    }
    plans.push(plan);
  }
  return plans;
}

/**
 * The rows files of `dir` without their seals file beside them (`audit-2026-01.ndjson.gz` and no
 * `audit-2026-01.seals.json`), by month: an archive whose writer failed or was killed between its
 * two renames, or one whose seals file was removed. {@link planArchiveErasure} lists archives by
 * their seals files, so such a file is never read; `audit-erase --archive-dir` names it.
 *
 * @example
 * const incomplete = await incompleteArchives('/var/archive/audit'); // Map { '2026-01' => '/var/archive/audit/audit-2026-01.ndjson.gz' }
 */
export async function incompleteArchives(dir: string): Promise<Map<string, string>> {
  const names = new Set(await readdir(dir));
  const incomplete = new Map<string, string>();
  for (const name of [...names].sort()) {
    const month = ROWS_FILE.exec(name)?.[1];
    if (month !== undefined && !names.has(archiveFiles(month).seals)) incomplete.set(month, join(dir, name));
  }
  return incomplete;
}

/**
 * The rows an erasure will erase in archives, for one stored form of the subject, by archive month:
 * what the erasure entry records (`changes.erasure.archives`).
 *
 * @example
 * const archived = archivedCounts(plans, forms); // then archived(['u-42', null, null]) → { '2026-01': 3 }
 */
export function archivedCounts(plans: readonly ArchivePlan[], forms: readonly ErasureSubject[]) {
  return (subject: ErasureSubject): Record<string, number> => {
    const form = forms.findIndex((f) => JSON.stringify(f) === JSON.stringify(subject));
    const counts: Record<string, number> = {};
    if (form < 0) return counts;
    for (const plan of plans) {
      const n = plan.byForm[form].filter((row) => row.state === 'erased').length;
      if (n > 0) counts[plan.month] = n;
    }
    return counts;
  };
}

/**
 * The rows an erasure will erase in archives, for one stored form of the subject, by archive month,
 * named by the digest of their ids ({@link archiveRowsDigest}): what the erasure entry records
 * (`changes.erasure.archiveRows`) beside their count.
 *
 * @example
 * const named = archivedRowDigests(plans, forms); // then named(['u-42', null, null]) → { '2026-01': 'q3…' }
 */
export function archivedRowDigests(plans: readonly ArchivePlan[], forms: readonly ErasureSubject[]) {
  return (subject: ErasureSubject): Record<string, string> => {
    const form = forms.findIndex((f) => JSON.stringify(f) === JSON.stringify(subject));
    const digests: Record<string, string> = {};
    if (form < 0) return digests;
    for (const plan of plans) {
      const ids = toEraseIds(plan, form);
      if (ids.length > 0) digests[plan.month] = archiveRowsDigest(ids);
    }
    return digests;
  };
}

/** The ids of the rows of form `form` that `plan` found to erase. */
function toEraseIds(plan: ArchivePlan, form: number): string[] {
  return plan.byForm[form].filter((row) => row.state === 'erased').map((row) => row.id);
}

/**
 * Rewrites one archive pair with the subject's rows erased as `audit_log_erase` erases them (the
 * actor's columns `[ERASED]`, `personal` the erased marker of the erasure that took the row's
 * form, nothing else changed), and its seals file carrying each erasure's entry whole
 * (`erasureEntries`) and in the summary (`erasures`). Both files are written under temporary names
 * through `files` (owner-only, each call on its deadline, each fsynced); the seals file is renamed
 * first, then the rows file, then the directory is fsynced: until the second rename the old rows
 * verify with either seals file, and a failure before it leaves the old rows in place. All of it
 * under the archive's lock ({@link withArchiveLock}: another run at it fails with
 * `AUDIT_ARCHIVE_LOCKED`, nothing written). Returns the rows erased; throws when they are not the
 * rows planned (the archive changed since: nothing renamed).
 *
 * @example
 * const erased = await eraseInArchive(plan, forms, result.parts, boundedArchiveFiles(dir, 30_000));
 */
export async function eraseInArchive(
  plan: ArchivePlan,
  forms: readonly ErasureSubject[],
  parts: readonly ErasurePart[],
  files: ArchiveFiles,
): Promise<number> {
  return withArchiveLock(files, plan.sealsPath, () => rewriteArchive(plan, forms, parts, files));
}

/** {@link eraseInArchive} under the archive's lock. */
async function rewriteArchive(
  plan: ArchivePlan,
  forms: readonly ErasureSubject[],
  parts: readonly ErasurePart[],
  files: ArchiveFiles,
): Promise<number> {
  const header = await readHeader(plan.sealsPath);
  const byForm = forms.map((subject) => parts.find((part) => JSON.stringify(part.subject) === JSON.stringify(subject)));
  const planned = forms.flatMap((_, i) => (byForm[i]?.entry ? toEraseIds(plan, i) : [])).sort();
  const erasedIds: string[] = [];
  const rowsPartial = `${plan.rowsPath}.partial`;
  const sealsPartial = `${plan.sealsPath}.partial`;
  try {
    const erased = await rewriteRows(plan.rowsPath, files, rowsPartial, (fields) => {
      const form = forms.findIndex((subject) => matches(fields, subject));
      const part = form >= 0 ? byForm[form] : undefined;
      if (!part?.entry || stateOf(fields) !== 'erased') return false;
      for (const i of [6, 8, 9]) if (fields[i] !== null) fields[i] = ERASED;
      fields[16] = `{"erased":"${part.erasureId}"}`;
      erasedIds.push(fields[0] as string);
      return true;
    });
    // The entry names the rows planned (a digest of their ids): the rewrite erases exactly those, or nothing.
    if (erased !== planned.length || erasedIds.sort().join('\n') !== planned.join('\n')) {
      throw Object.assign(
        new Error(`${plan.rowsPath} holds ${erased} rows of the subject to erase, ${planned.length} were counted before: it changed since`),
        { code: 'AUDIT_ARCHIVE_CHANGED' },
      );
    }
    const entries = parts.filter((part) => part.entry && part.subject && erasedIn(plan, forms, part) > 0);
    const next: ArchiveHeader = {
      ...header,
      erasures: [
        ...(header.erasures ?? []),
        ...entries.map((part) => ({
          entry: part.entry?.[0] as string,
          erasure: part.erasureId,
          rows: entryCount(part.entry as (string | null)[], header.month),
        })),
      ],
      erasureEntries: [...(header.erasureEntries ?? []), ...entries.map((part) => part.entry as (string | null)[])],
    };
    await files.writeFile(sealsPartial, `${JSON.stringify(next, null, 1)}\n`);
    await files.rename(sealsPartial, plan.sealsPath);
    await files.rename(rowsPartial, plan.rowsPath);
    await files.syncDirectory(dirname(plan.sealsPath));
    return erased;
  } finally {
    await files.discard(rowsPartial);
    await files.discard(sealsPartial);
  }
}

/** Rows of `part`'s form that the plan found to erase in `plan`'s archive. */
function erasedIn(plan: ArchivePlan, forms: readonly ErasureSubject[], part: ErasurePart): number {
  const form = forms.findIndex((subject) => JSON.stringify(subject) === JSON.stringify(part.subject));
  return form < 0 ? 0 : plan.byForm[form].filter((r) => r.state === 'erased').length;
}

async function readHeader(sealsPath: string): Promise<ArchiveHeader> {
  const header = JSON.parse(await readFile(sealsPath, 'utf8')) as ArchiveHeader;
  if (header?.format !== ARCHIVE_FORMAT || typeof header.rowsFile !== 'string' || typeof header.month !== 'string') {
    throw new Error(`${sealsPath} is not an archive's seals file (format ${ARCHIVE_FORMAT})`);
  }
  if (header.rowsFile !== archiveFiles(header.month).rows)
    throw new Error(`${sealsPath} names a rows file not of its month: ${header.rowsFile}`);
  return header;
}

/** Streams the rows file through `change` (true when it changed the row) into `partial`; returns the rows changed. */
async function rewriteRows(
  rowsPath: string,
  files: ArchiveFiles,
  partial: string,
  change: (fields: (string | null)[]) => boolean,
): Promise<number> {
  const file = await files.create(partial);
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
  let changed = 0;
  try {
    for await (const chunk of linesOf(rowsPath)) {
      let text = '';
      for (const line of chunk) {
        if (line === '') continue;
        const fields = JSON.parse(line) as (string | null)[];
        // A row left as it is keeps its line byte for byte.
        if (!change(fields)) text += `${line}\n`;
        else {
          text += `${JSON.stringify(fields)}\n`;
          changed += 1;
        }
      }
      if (!gzip.write(text)) {
        const drained = once(gzip, 'drain');
        drained.catch(() => undefined);
        await Promise.race([drained, piped]);
      }
    }
    gzip.end();
    await piped;
    return changed;
  } finally {
    gzip.destroy();
    await close().catch(() => undefined);
  }
}

/** What `audit_log_erase` would make of a matched row. */
function stateOf(fields: readonly (string | null)[]): ArchivedRowState['state'] {
  if (fields[14] === null) return 'not_erasable';
  // A NULL personal is left as it is, as the table's UPDATE leaves it (its NOT LIKE is not true).
  return fields[16] === null || fields[16].startsWith(ERASED_PREFIX) ? 'already_erased' : 'erased';
}

/** Whether a row (archive fields) is one of `subject`'s, as `audit_log_erase` matches rows. */
function matches(fields: readonly (string | null)[], [userId, entityType, entityId]: ErasureSubject): boolean {
  if (userId !== null) return fields[6] === userId;
  if (entityType === null || entityId === null) return false;
  if (fields[4] === entityType && fields[5] === entityId) return true;
  const changes = fields[11];
  if (changes === null || !changes.includes('"entities"')) return false;
  return entityRefs(changes).some((ref) => ref.type === entityType && sameId(ref.id, entityId));
}

/** `changes.entities`' `type` and `id` of each change, a number's id as its source text (so a long one keeps its digits). */
function entityRefs(changes: string): { type: unknown; id: unknown }[] {
  let parsed: unknown;
  try {
    parsed = (JSON.parse as (text: string, reviver: (key: string, value: unknown, context?: { source?: string }) => unknown) => unknown)(
      changes,
      (key, value, context) => (key === 'id' && typeof value === 'number' && context?.source ? { number: context.source } : value),
    );
  } catch {
    return [];
  }
  const entities = (parsed as { entities?: unknown } | null)?.entities;
  if (!Array.isArray(entities)) return [];
  return entities.filter((e): e is { type: unknown; id: unknown } => !!e && typeof e === 'object' && !Array.isArray(e));
}

/** As jsonb containment compares an id: the same text, or the same number (the id spelled as a whole number). */
function sameId(id: unknown, entityId: string): boolean {
  if (typeof id === 'string') return id === entityId;
  // Without the reviver's source text (before Node 21): a number JavaScript reads exactly.
  if (typeof id === 'number') return Number.isSafeInteger(id) && String(id) === entityId;
  const source = (id as { number?: unknown } | null)?.number;
  if (typeof source !== 'string' || !/^-?(0|[1-9][0-9]*)$/.test(entityId)) return false;
  const whole = /^(-?[0-9]+)(?:\.0+)?$/.exec(source);
  return whole !== null && BigInt(whole[1]) === BigInt(entityId);
}

/** What {@link eraseArchives} did: its exit status, the rows erased (or, dry, that would be), the archives rewritten and listed. */
export interface ArchivesErased {
  status: number;
  total: number;
  touched: number;
  /** Archive pairs in the directory when it was listed. */
  listed: number;
  /** Archives written since the archives were counted, holding rows of the subject to erase: the erasure is to run again. */
  again: boolean;
}

/**
 * `audit-erase --archive-dir`'s second step. A dry run lists each archive's rows of the subject
 * as `counted` (the reading before the database) found them, and writes nothing. Otherwise, once
 * the database erasure committed, it lists the directory again: first its locks, then its
 * archives. An archive's writer (`audit-archive`, `audit-retention --archive-dir`) holds the lock
 * from before its snapshot until its files are in place, so every archive whose snapshot came
 * before the commit is either listed now or still locked: one still locked by a writer (or whose
 * lock is empty or left) is named (`AUDIT_ARCHIVE_LOCKED`, run the same erasure again once it has
 * ended); the locks are read before the archives so that one renamed in between is listed. Each
 * archive listed with rows to erase is rewritten ({@link eraseInArchive}) when the erasure's entry
 * counts them (no more rows of a form than `counted` found there); one that holds rows the entry
 * does not count (written into the directory since it was read) is not touched: with `again`
 * allowed and nothing failed, the result asks for the erasure to run again (its entry then counts
 * them), else it is named (`AUDIT_ARCHIVE_CHANGED`). A rows file without its seals file (a write
 * that failed or was killed between its renames) is never read: it is named
 * (`AUDIT_ARCHIVE_INCOMPLETE`, status 1). Prints per archive how many rows were erased.
 *
 * @example
 * const done = await eraseArchives('/var/archive/audit', { plans, forms }, result, boundedArchiveFiles(dir, 30_000), io, true);
 */
export async function eraseArchives(
  dir: string,
  { plans: counted, forms }: { plans: readonly ArchivePlan[]; forms: readonly ErasureSubject[] },
  result: ErasureResult,
  files: ArchiveFiles,
  io: { out(line: string): void; err(line: string): void },
  again = false,
): Promise<ArchivesErased> {
  const verb = { erased: result.dryRun ? 'would erase' : 'erased', already_erased: 'already erased', not_erasable: 'not erasable' };
  const done: ArchivesErased = { status: 0, total: 0, touched: 0, listed: counted.length, again: false };
  // Locks first: an archive whose writer ends between the two readings is in place for the second.
  const writing = result.dryRun ? new Map<string, string>() : await archivesBeingWritten(dir);
  const plans = result.dryRun ? counted : await planArchiveErasure(dir, forms);
  // A writer renaming its files meanwhile holds the archive's lock, read before both listings: named as being written.
  const incomplete = await incompleteArchives(dir);
  done.listed = plans.length;
  const countedOf = forms.map((subject) => archivedRowDigests(counted, forms)(subject));
  const uncounted: { plan: ArchivePlan; rows: number }[] = [];
  for (const plan of plans) {
    const rows = plan.byForm.flat();
    const count = (state: ArchivedRowState['state']) => rows.filter((row) => row.state === state).length;
    if (rows.length === 0 || writing.has(plan.month)) continue;
    // The entry names the rows it erases in each archive: rows to erase now that are not exactly those make it erase again.
    const toErase = plan.byForm.map((_, i) => toEraseIds(plan, i));
    if (toErase.some((ids, i) => ids.length > 0 && archiveRowsDigest(ids) !== countedOf[i][plan.month])) {
      uncounted.push({ plan, rows: count('erased') });
      continue;
    }
    for (const row of rows) io.out(`${verb[row.state]} ${row.id} in archive ${plan.month}`);
    const others = `${count('already_erased')} already erased, ${count('not_erasable')} not erasable`;
    if (result.dryRun || count('erased') === 0) {
      io.out(`archive ${plan.month}: ${count('erased')} rows ${result.dryRun ? 'would be erased' : 'erased'}, ${others}`);
      done.total += result.dryRun ? count('erased') : 0;
      done.touched += result.dryRun && count('erased') > 0 ? 1 : 0;
      continue;
    }
    try {
      const erased = await eraseInArchive(plan, forms, result.parts ?? [], files);
      io.out(`archive ${plan.month}: ${erased} rows erased, ${others}`);
      done.total += erased;
      done.touched += 1;
    } catch (error) {
      io.err(
        `archive ${plan.month}: FAILED ${(error as { code?: string }).code ?? 'error'}: ${(error as Error).message}; ` +
          `its rows file is as it was: erase the subject again with --archive-dir ${dir}`,
      );
      done.status = 1;
    }
  }
  for (const [month, message] of writing) {
    io.err(
      `archive ${month}: FAILED AUDIT_ARCHIVE_LOCKED: ${message}; it is being written, perhaps from a snapshot taken before ` +
        'this erasure: run the same erasure again once it has ended',
    );
    done.status = 1;
  }
  for (const [month, rowsPath] of incomplete) {
    // A rows file whose writer still holds the lock is named above, as being written.
    if (writing.has(month) || plans.some((plan) => plan.month === month)) continue;
    io.err(
      `archive ${month}: FAILED AUDIT_ARCHIVE_INCOMPLETE: ${rowsPath} has no seals file beside it (an archive write that failed ` +
        `or was killed before its seals file was in place), and was not read: write the month's archive again ` +
        `(audit-archive --month ${month} --out ${dir}) while the month is in the database, or put its seals file back, ` +
        'then run the same erasure again',
    );
    done.status = 1;
  }
  done.again = again && done.status === 0 && uncounted.length > 0;
  for (const { plan, rows } of uncounted) {
    if (done.again) {
      io.out(
        `audit-erase: archive ${plan.month} in ${dir} was written since the archives were read: ${rows} rows of the subject ` +
          'there that this erasure did not count; erasing again',
      );
    } else {
      io.err(
        `archive ${plan.month}: FAILED AUDIT_ARCHIVE_CHANGED: written since the archives were read, ${rows} rows of the subject ` +
          `there that this erasure did not count; its rows file is as it was: erase the subject again with --archive-dir ${dir}`,
      );
      done.status = 1;
    }
  }
  return done;
}
