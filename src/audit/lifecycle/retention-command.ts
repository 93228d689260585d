import { type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { type Client } from 'pg';
import { connectCommandClient, isCommandTimeout } from '../command-client';
import { connectionSecrets, sanitizeDbError } from '../db-error';
import { resolveIntegrityOptions } from '../integrity/integrity-options';
import { trailName } from '../integrity/seal-store';
import { qualifiedTable } from '../integrity/search-path';
import { witnessLine } from '../integrity/witness-line';
import { formatEventLines } from '../sinks/console.sink';
import { archiveBeforeRetire } from './archive-retention';
import { applyRetention, type MonthDecision } from './retention';
import { parseLegalHold, resolveRetentionOptions } from './retention-options';
import { parseCommandArgs, parseTimeoutMs, TIMEOUT_EXIT_STATUS, TIMEOUT_OPTION, TIMEOUT_USAGE } from '../command-args';

export const RETENTION_USAGE = `usage: npm run audit:retention -- [options]   (or: npx audit-retention [options])
  --months <n>             whole months kept before the current one (default: AUDIT_RETENTION_MONTHS; required)
  --legal-hold <YYYY-MM,…> months never removed (default: AUDIT_RETENTION_LEGAL_HOLD)
  --dry-run                list what would go and why each other month stays; change nothing
  --legacy                 remove the legacy partition (rows from before the partition migration) whole too, once its
                           bound is out of the window, wholly sealed and no legal-hold month is inside it
  --url <postgres://…>     the audit database (default: AUDIT_DATABASE_URL or DATABASE_URL)
  --table <schema.table>   the audit table (default: AUDIT_TABLE or audit_log; without a schema: public)
  --signing-key <file|key> the seals' Ed25519 private key, to sign each checkpoint (default: AUDIT_INTEGRITY_SIGNING_KEY)
  --archive-dir <dir>      archive each month there first (audit-archive's files) and check the archive; a month
                           whose archive fails or does not verify is not removed (default: AUDIT_RETENTION_ARCHIVE_DIR)
${TIMEOUT_USAGE}; also each statement's statement_timeout and lock_timeout on the server
each removal writes an audit.retained line to stderr: send it to the witness's log group.
exit status: 0 done, 1 a month could not be removed, 2 usage or connection error, 3 the database did not answer within --timeout-ms`;

/** Where the command writes: the plan to `out`, usage, errors and `audit.retained` lines to `err`. */
export interface RetentionOutput {
  out(line: string): void;
  err(line: string): void;
}

/**
 * `audit-retention`: removes the monthly partitions of the audit table that are wholly sealed,
 * older than the window and not under legal hold, each with a signed checkpoint in the seal chain
 * and an `audit.retained` line (see docs/LIFECYCLE.md); prints one line per partition. Returns
 * the exit status.
 *
 * @example
 * const status = await runRetention(['--months', '72', '--dry-run'], process.env, { out: console.log, err: console.error });
 */
export async function runRetention(argv: string[], env: Record<string, string | undefined>, io: RetentionOutput): Promise<number> {
  let args: ReturnType<typeof parse>;
  let settings: { months: number; legalHold: readonly string[] };
  let signingKey: KeyObject | null;
  let timeoutMs: number;
  try {
    args = parse(argv);
    if (args.help) {
      io.out(RETENTION_USAGE);
      return 0;
    }
    const monthsText = args.months ?? env.AUDIT_RETENTION_MONTHS;
    if (monthsText === undefined || !/^\d+$/.test(monthsText.trim())) {
      throw new Error(`--months (or AUDIT_RETENTION_MONTHS) must be a whole number of months, got ${JSON.stringify(monthsText ?? null)}`);
    }
    const resolved = resolveRetentionOptions({
      months: Number(monthsText),
      legalHold: parseLegalHold(args['legal-hold'] ?? env.AUDIT_RETENTION_LEGAL_HOLD),
    });
    settings = resolved as NonNullable<typeof resolved>;
    signingKey = readSigningKey(args['signing-key'] ?? env.AUDIT_INTEGRITY_SIGNING_KEY);
    timeoutMs = parseTimeoutMs(args['timeout-ms']);
  } catch (error) {
    io.err(`${(error as Error).message.replace(/AuditModule option "retention\.(\w+)/, '"--$1')}\n${RETENTION_USAGE}`);
    return 2;
  }
  const url = args.url || env.AUDIT_DATABASE_URL || env.DATABASE_URL;
  if (!url) {
    io.err(`--url, AUDIT_DATABASE_URL or DATABASE_URL must be set\n${RETENTION_USAGE}`);
    return 2;
  }
  const given = args.table || env.AUDIT_TABLE || 'audit_log';
  const table = qualifiedTable(given);
  const archiveDir = args['archive-dir'] || env.AUDIT_RETENTION_ARCHIVE_DIR || undefined;
  let client: Client | undefined;
  let decisions: MonthDecision[];
  try {
    client = await connectCommandClient(url, timeoutMs);
    const connected = client;
    const [{ name }] = (await client.query<{ name: string }>('SELECT pg_catalog.current_database() AS name')).rows;
    // Named as the sealer names it (the table as the app gives it), so that one witness holds both.
    const trail = trailName(name, given);
    const query = async (sql: string, parameters?: unknown[]) => {
      const result = (await connected.query(sql, parameters)) as unknown;
      const last = (Array.isArray(result) ? result.at(-1) : result) as { rows?: Record<string, unknown>[] };
      return last.rows ?? [];
    };
    decisions = await applyRetention(
      { query },
      {
        table,
        ...settings,
        dryRun: !!args['dry-run'],
        legacy: !!args.legacy,
        signingKey,
        timeoutMs,
        archive: archiveDir ? archiveBeforeRetire(connected, { table, trail, out: archiveDir, signingKey, timeoutMs }) : undefined,
        retained: (checkpoint) => {
          const { event, fields } = witnessLine(trail, checkpoint);
          for (const line of formatEventLines(event, 'info', fields)) io.err(line);
        },
      },
    );
  } catch (error) {
    const { code, message } = sanitizeDbError(error, connectionSecrets({ url }));
    io.err(`audit-retention failed: ${code}: ${message}`);
    return isCommandTimeout(error) ? TIMEOUT_EXIT_STATUS : 2;
  } finally {
    await client?.end().catch(() => undefined);
  }
  for (const d of decisions) {
    io.out(`${d.action.toUpperCase().replace(' ', '_')} ${d.month} (${d.partition}): ${d.reason}`);
  }
  const count = (action: MonthDecision['action']) => decisions.filter((d) => d.action === action).length;
  io.out(
    args['dry-run']
      ? `audit-retention (dry run): ${count('would retire')} months would go, ${count('kept')} partitions stay; nothing was changed`
      : `audit-retention: ${count('retired')} months removed, ${count('kept')} partitions kept, ${count('failed')} failed`,
  );
  return count('failed') > 0 ? 1 : 0;
}

function parse(argv: string[]) {
  return parseCommandArgs(argv, {
    months: { type: 'string' },
    'legal-hold': { type: 'string' },
    'dry-run': { type: 'boolean' },
    legacy: { type: 'boolean' },
    url: { type: 'string' },
    table: { type: 'string' },
    'signing-key': { type: 'string' },
    'archive-dir': { type: 'string' },
    ...TIMEOUT_OPTION,
    help: { type: 'boolean', short: 'h' },
  });
}

function readSigningKey(value: string | undefined): KeyObject | null {
  if (value === undefined || value.trim() === '') return null;
  const text = existsSync(value) ? readFileSync(value, 'utf8') : value;
  try {
    return resolveIntegrityOptions({ signingKey: text }).signingKey;
  } catch {
    throw new Error(
      '--signing-key (or AUDIT_INTEGRITY_SIGNING_KEY) must be an Ed25519 private key: a PEM file, PEM text or base64 DER (PKCS#8)',
    );
  }
}
