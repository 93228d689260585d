import { Pool } from 'pg';
import { AuditEntryNormalizer } from '../audit-entry';
import { quoteTablePath } from '../audit-insert-sql';
import { connectionSecrets, sanitizeDbError } from '../db-error';
import { entrySigner, parseEntryKeys, resolveEntryKeys } from '../integrity/entry-auth';
import { DEFAULT_REDACT_KEYS } from '../redaction';
import { type ArchiveFiles, boundedArchiveFiles } from '../lifecycle/archive-files';
import { type ArchivePlan, archivedCounts, archivedRowDigests, eraseArchives, planArchiveErasure } from './archive-erasure';
import { eraseWithDeadlines } from './bounded-erasure';
import { erasureEntryMaxBytes, type ErasureRequest, erasureSubject, subjectForms } from './erasure';
import { personalSplitter } from './personal-values';
import { resolvePrivacyOptions } from './privacy-options';
import { parseCommandArgs, parseTimeoutMs, TIMEOUT_EXIT_STATUS, TIMEOUT_OPTION, TIMEOUT_USAGE } from '../command-args';
import { AuditDbTimeoutError } from '../audit.errors';

export const ERASE_USAGE = `usage: npm run audit:erase -- (--user <id> | --entity <type> --entity-id <id>) [options]   (or: npx audit-erase …)
  --user <id>              erase the personal values of every row this user is the actor of
  --entity <type>, --entity-id <id>  erase those of every row about this entity
  --dry-run                list the rows that would change; change nothing, write no entry
  --by <who>               who asked (the erasure entry's actor)
  --reason <text>          why (the erasure entry's metadata; never the erased value)
  --archive-dir <dir>      also erase the subject's rows in the archives in <dir> (audit-archive's pairs), once
                           the database erasure commits; the erasure entry counts them (docs/PRIVACY.md)
  --url <postgres://…>     the audit database (default: AUDIT_DATABASE_URL or DATABASE_URL)
  --table <schema.table>   the audit table (default: AUDIT_TABLE or audit_log)
${TIMEOUT_USAGE}; also each statement's statement_timeout
                           on the server, and a round trip's client-side bound is twice it
environment: AUDIT_INTEGRITY_ENTRY_KEY signs the erasure entry (as the app does); AUDIT_PRIVACY_PSEUDONYM_KEY
  (default: the entry key) makes the subject's pseudonym; AUDIT_PRIVACY_PSEUDONYMIZE_USER_ID=true when the
  app stores user ids as their keyed pseudonyms (with a userIdPseudonym function of your own, give --user the pseudonym)
exit status: 0 done, 1 erased in the database but an archive not rewritten (its rows file as it was: run it again),
             2 usage or database error (a COMMIT never answered among them: the outcome is not known),
             3 the database did not answer within --timeout-ms before the COMMIT: nothing was erased`;

/**
 * The erasures one `audit-erase --archive-dir` run makes at most: an archive written into the
 * directory between the run's reading of it and its commit, holding rows of the subject its entry
 * does not count, makes it erase again (the database's rows are found erased already; the new
 * entry counts the archive's), twice at most; past that the archive is named and the exit is 1.
 */
const MAX_PASSES = 3;

/** Where the command writes: the report to `out`, usage and errors to `err`. */
export interface EraseOutput {
  out(line: string): void;
  err(line: string): void;
}

/**
 * `audit-erase`: erases the personal values of a user's or an entity's rows through
 * `audit_log_erase` and writes the `audit_erasure` entry in the same transaction (docs/PRIVACY.md);
 * with `--dry-run`, lists what would change. With `--archive-dir`, also erases the subject's rows
 * in the archives there once the database erasure commits (docs/PRIVACY.md, "Erasure inside
 * archives"), their file calls through `archiveFilesOf` (bounded by `--timeout-ms`). Returns the
 * exit status.
 *
 * @example
 * const status = await runErase(['--user', 'u-42', '--by', 'dpo'], process.env, { out: console.log, err: console.error });
 */
export async function runErase(
  argv: string[],
  env: Record<string, string | undefined>,
  io: EraseOutput,
  archiveFilesOf: (dir: string, timeoutMs: number) => ArchiveFiles = boundedArchiveFiles,
): Promise<number> {
  let request: ErasureRequest;
  let args: ReturnType<typeof parse>;
  let normalizer: AuditEntryNormalizer;
  let privacy: ReturnType<typeof resolvePrivacyOptions>;
  let entryKeys: ReturnType<typeof resolveEntryKeys>;
  let timeoutMs: number;
  try {
    args = parse(argv);
    if (args.help) {
      io.out(ERASE_USAGE);
      return 0;
    }
    request = {
      ...(args.user !== undefined ? { userId: args.user } : {}),
      ...(args.entity !== undefined || args['entity-id'] !== undefined ? { entityType: args.entity, entityId: args['entity-id'] } : {}),
      dryRun: args['dry-run'] === true,
      ...(args.by !== undefined ? { requestedBy: args.by } : {}),
      ...(args.reason !== undefined ? { reason: args.reason } : {}),
    };
    entryKeys = resolveEntryKeys(parseEntryKeys(env.AUDIT_INTEGRITY_ENTRY_KEY ?? ''));
    privacy = resolvePrivacyOptions({
      pseudonymKey: env.AUDIT_PRIVACY_PSEUDONYM_KEY || null,
      pseudonymizeUserId: env.AUDIT_PRIVACY_PSEUDONYMIZE_USER_ID === 'true',
    });
    timeoutMs = parseTimeoutMs(args['timeout-ms']);
    normalizer = new AuditEntryNormalizer(
      DEFAULT_REDACT_KEYS,
      erasureEntryMaxBytes(64 * 1024),
      entrySigner(entryKeys),
      personalSplitter(privacy),
    );
  } catch (error) {
    io.err(`${(error as Error).message}\n${ERASE_USAGE}`);
    return 2;
  }
  const url = args.url || env.AUDIT_DATABASE_URL || env.DATABASE_URL;
  if (!url) {
    io.err(`--url, AUDIT_DATABASE_URL or DATABASE_URL must be set\n${ERASE_USAGE}`);
    return 2;
  }
  // One connection with client-side deadlines: a server that never answers fails the command. Each
  // statement is bounded on the server by --timeout-ms, so a round trip that lasts twice that is silence, not work.
  const pool = new Pool({ connectionString: url, max: 1, allowExitOnIdle: true });
  pool.on('error', () => undefined);
  const key = privacy.pseudonymKey ?? entryKeys[0]?.key ?? null;
  const archiveDir = args['archive-dir'];
  const erased = { total: 0, touched: 0 };
  let committed = false;
  try {
    const forms = key ? subjectForms(request, privacy.userIdPseudonym, key) : [erasureSubject(request, privacy.userIdPseudonym)];
    for (let pass = 1; ; pass += 1) {
      let plans: ArchivePlan[] | null = null;
      // Read before anything is erased: the entry counts the archives' rows, and an archive that cannot be read stops it all.
      if (archiveDir !== undefined) plans = await planArchiveErasure(archiveDir, forms);
      const result = await eraseWithDeadlines(
        pool,
        { connectMs: timeoutMs, statementMs: timeoutMs, roundTripMs: 2 * timeoutMs },
        {
          table: quoteTablePath(args.table || env.AUDIT_TABLE || 'audit_log'),
          normalize: (entry) => normalizer.normalize(entry, { redact: false }).record,
          key,
          userIdPseudonym: privacy.userIdPseudonym,
          ...(plans ? { archived: archivedCounts(plans, forms), archivedRows: archivedRowDigests(plans, forms) } : {}),
        },
        request,
      );
      committed = !result.dryRun;
      const verb = { erased: result.dryRun ? 'would erase' : 'erased', already_erased: 'already erased', not_erasable: 'not erasable' };
      for (const row of result.rows) io.out(`${verb[row.state]} ${row.id} ${row.occurredAt}`);
      io.out(
        `audit-erase: ${result.erased} rows ${result.dryRun ? 'would be erased' : 'erased'}, ${result.alreadyErased} already erased, ` +
          `${result.notErasable} not erasable (written before personal-data commitments); subject ${result.subject}` +
          (result.entryId ? `; erasure ${result.erasureId} recorded by entry ${result.entryId}` : '; dry run: nothing changed'),
      );
      if (archiveDir === undefined || plans === null) return 0;
      let done;
      try {
        // The directory listed again now that the erasure committed (its locks, then its archives): see eraseArchives.
        done = await eraseArchives(archiveDir, { plans, forms }, result, archiveFilesOf(archiveDir, timeoutMs), io, pass < MAX_PASSES);
      } catch (error) {
        io.err(
          `audit-erase: archives in ${archiveDir} could not be read again once the erasure committed: ` +
            `${(error as { code?: string }).code ?? 'error'}: ${(error as Error).message}; run the same erasure again`,
        );
        return 1;
      }
      erased.total += done.total;
      erased.touched += done.touched;
      if (done.again) continue;
      io.out(
        `audit-erase: archives in ${archiveDir}: ${erased.total} rows ${result.dryRun ? 'would be erased' : 'erased'} in ${erased.touched} archives of ${done.listed}` +
          (result.dryRun ? '; dry run: nothing changed' : ''),
      );
      return done.status;
    }
  } catch (error) {
    const { code, message } = sanitizeDbError(error, connectionSecrets({ url }));
    io.err(`audit-erase failed: ${code}: ${message}`);
    // Erasing again for an archive written meanwhile: the first erasure committed, that archive is not rewritten.
    if (committed) return 1;
    // A COMMIT never answered stays 2: its outcome is not known, unlike a step before it (nothing erased).
    return error instanceof AuditDbTimeoutError && (error.step === 'connect' || error.step === 'query') ? TIMEOUT_EXIT_STATUS : 2;
  } finally {
    await pool.end().catch(() => undefined);
  }
}

function parse(argv: string[]) {
  return parseCommandArgs(argv, {
    user: { type: 'string' },
    entity: { type: 'string' },
    'entity-id': { type: 'string' },
    'dry-run': { type: 'boolean' },
    by: { type: 'string' },
    reason: { type: 'string' },
    'archive-dir': { type: 'string' },
    url: { type: 'string' },
    table: { type: 'string' },
    ...TIMEOUT_OPTION,
    help: { type: 'boolean', short: 'h' },
  });
}
