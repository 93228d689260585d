import { type Client } from 'pg';
import { connectCommandClient, isCommandTimeout } from '../command-client';
import { connectionSecrets, sanitizeDbError } from '../db-error';
import { trailName } from '../integrity/seal-store';
import { PIN_SEARCH_PATH_SQL, qualifiedTable } from '../integrity/search-path';
import { DiskTimeoutError } from '../spool/spool-errors';
import { writeArchive } from './archive-writer';
import { legacyMark, MONTH_OR_LEGACY_PATTERN } from './legacy-range';
import { partitionLayout } from './month-partitions';
import { parseCommandArgs, parseTimeoutMs, TIMEOUT_EXIT_STATUS, TIMEOUT_OPTION, TIMEOUT_USAGE } from '../command-args';

export const ARCHIVE_USAGE = `usage: npm run audit:archive -- --month <YYYY-MM> --out <dir> [options]   (or: npx audit-archive …)
  --month <YYYY-MM>        the month to archive (its rows by occurred_at, UTC); legacy: the legacy partition's
                           rows (every row before its bound), as audit-retention --legacy removes them
  --out <dir>              where to write audit-YYYY-MM.ndjson.gz and audit-YYYY-MM.seals.json (made if absent)
  --url <postgres://…>     the audit database (default: AUDIT_DATABASE_URL or DATABASE_URL)
  --table <schema.table>   the audit table (default: AUDIT_TABLE or audit_log; without a schema: public)
  --trail <database/table> the trail the archive names, as the witness names it (default: this database/table;
                           name the original from a restored copy, whose database has another name)
${TIMEOUT_USAGE}
check the archive with: npx audit-verify --archive <dir>/audit-YYYY-MM.seals.json --public-key … --witness …
exit status: 0 written, 1 refused (the month is not wholly sealed, retention removed it, an archive of it in --out holds more of its
             rows, or another run holds the archive's lock), 2 usage, connection or write error (a file
             call on --out that did not return within --timeout-ms included: AUDIT_DISK_TIMEOUT),
             3 the database did not answer within --timeout-ms`;

/** Where the command writes: the summary to `out`, usage and errors to `err`. */
export interface ArchiveOutput {
  out(line: string): void;
  err(line: string): void;
}

/**
 * `audit-archive`: writes one month's rows and the seals that check them to a directory (see
 * docs/LIFECYCLE.md, "Archives"). Returns the exit status.
 *
 * @example
 * const status = await runArchive(['--month', '2026-01', '--out', '/archive'], process.env, { out: console.log, err: console.error });
 */
export async function runArchive(argv: string[], env: Record<string, string | undefined>, io: ArchiveOutput): Promise<number> {
  let args: ReturnType<typeof parse>;
  let timeoutMs: number;
  try {
    args = parse(argv);
    if (args.help) {
      io.out(ARCHIVE_USAGE);
      return 0;
    }
    if (!args.month || !(args.month === 'legacy' || MONTH_OR_LEGACY_PATTERN.test(args.month))) {
      throw new Error(`--month must be a month such as 2026-01, or legacy, got ${JSON.stringify(args.month ?? null)}`);
    }
    if (!args.out) throw new Error('--out must name the directory to write the archive to');
    timeoutMs = parseTimeoutMs(args['timeout-ms']);
  } catch (error) {
    io.err(`${(error as Error).message}\n${ARCHIVE_USAGE}`);
    return 2;
  }
  const url = args.url || env.AUDIT_DATABASE_URL || env.DATABASE_URL;
  if (!url) {
    io.err(`--url, AUDIT_DATABASE_URL or DATABASE_URL must be set\n${ARCHIVE_USAGE}`);
    return 2;
  }
  const given = args.table || env.AUDIT_TABLE || 'audit_log';
  let client: Client | undefined;
  try {
    client = await connectCommandClient(url, timeoutMs);
    // Whatever the role's own search_path: no name this session uses resolves outside pg_catalog.
    await client.query(PIN_SEARCH_PATH_SQL.replace('SET LOCAL', 'SET'));
    const [{ name }] = (await client.query<{ name: string }>('SELECT pg_catalog.current_database() AS name')).rows;
    const month = args.month === 'legacy' ? await legacyMonth(client, qualifiedTable(given)) : args.month;
    if (month === null) {
      io.err('audit-archive refused: audit_log has no legacy partition (FROM (MINVALUE)) to archive');
      return 1;
    }
    const result = await writeArchive(client, {
      table: qualifiedTable(given),
      month,
      out: args.out,
      trail: args.trail ?? trailName(name, given),
      timeoutMs,
    });
    if (!result.written) {
      io.err(`audit-archive refused: ${result.code ? `${result.code}: ` : ''}${result.refused}`);
      return 1;
    }
    const { header } = result;
    const segment = header.seals.length ? `seals ${header.seals[0].seq}–${header.seals[header.seals.length - 1].seq}` : 'no seals';
    io.out(`${result.rowsPath}: ${header.rows} rows (${header.monthRows} of ${header.month}), ${segment}`);
    io.out(
      `${result.sealsPath}: ${header.seals.length} seals, ${header.checkpoints.length} checkpoints, ${header.erasures.length} erasure entries`,
    );
    io.out(`audit-archive: ${header.month} archived; check it with audit-verify --archive ${result.sealsPath}`);
    return 0;
  } catch (error) {
    if ((error as { code?: string }).code === 'AUDIT_ARCHIVE_LOCKED') {
      io.err(
        `audit-archive refused: AUDIT_ARCHIVE_LOCKED: ${(error as Error).message}; nothing written: run it again once that run has ended`,
      );
      return 1;
    }
    if (error instanceof DiskTimeoutError) {
      io.err(`audit-archive failed: ${error.message} on --out ${args.out}; nothing archived, the transaction rolled back`);
      return 2;
    }
    const { code, message } = sanitizeDbError(error, connectionSecrets({ url }));
    io.err(`audit-archive failed: ${code}: ${message}`);
    return isCommandTimeout(error) ? TIMEOUT_EXIT_STATUS : 2;
  } finally {
    await client?.end().catch(() => undefined);
  }
}

function parse(argv: string[]) {
  return parseCommandArgs(argv, {
    month: { type: 'string' },
    out: { type: 'string' },
    url: { type: 'string' },
    table: { type: 'string' },
    trail: { type: 'string' },
    ...TIMEOUT_OPTION,
    help: { type: 'boolean', short: 'h' },
  });
}

/** The legacy partition's range as an archive names it (`legacy..YYYY-MM`), or null without one. */
async function legacyMonth(client: Client, table: string): Promise<string | null> {
  const query = async (sql: string, parameters?: unknown[]) => (await client.query(sql, parameters)).rows as Record<string, unknown>[];
  const { legacyUntil } = await partitionLayout(query, table);
  return legacyUntil === null ? null : legacyMark(legacyUntil);
}
