#!/usr/bin/env node
import { buildAuditInsert, quoteTablePath } from '../audit-insert-sql';
import { parseCommandLine, parseTimeoutMs, TIMEOUT_EXIT_STATUS, TIMEOUT_OPTION, TIMEOUT_USAGE } from '../command-args';
import { connectCommandClient, isCommandTimeout } from '../command-client';
import { connectionSecrets, sanitizeDbError } from '../db-error';
import { parseEntryKeys, resolveEntryKeys } from '../integrity/entry-auth';
import { heldBackByErasure } from '../privacy/replay-guard';
import { resolvePrivacyOptions } from '../privacy/privacy-options';
import { isolateRefused } from '../quarantine/isolate-refused';
import { readReplaySource } from './replay-source';

const USAGE = `usage: npm run audit:replay -- [--timeout-ms <ms>] <spool dir | quarantine dir | segment | CloudWatch export>…
  (reads AUDIT_DATABASE_URL or DATABASE_URL)
${TIMEOUT_USAGE}
exit status: 0 all inserted or present, 1 an entry rejected or held back, 2 usage or database error,
             3 the database did not answer within --timeout-ms (what was inserted before stays; replaying again is safe)`;
const BATCH = 500;

/**
 * Inserts the audit entries found in spool segments, quarantine files or CloudWatch exports into
 * `audit_log`, idempotently (ON CONFLICT DO NOTHING on the entry's id), and prints what it
 * inserted, what was already present and what it rejected: damaged lines, and entries the database
 * still refuses for their content (each named with its error; the others of its batch commit).
 * An entry whose subject was erased after it was written is held back, never inserted (it would
 * bring the erased values back; docs/PRIVACY.md), and named. Exits 1 when anything was rejected
 * or held back, 2 on a usage or database error, 3 when the database did not answer within
 * `--timeout-ms` (docs/FAILURES.md, "The commands' deadlines").
 *
 * @example
 * // AUDIT_DATABASE_URL=postgres://… npm run audit:replay -- /var/spool/audit cloudwatch-export.log
 */
async function main(argv: string[]): Promise<number> {
  let paths: string[];
  let timeoutMs: number;
  try {
    const { values, positionals } = parseCommandLine(argv, { ...TIMEOUT_OPTION }, true);
    paths = positionals;
    timeoutMs = parseTimeoutMs(values['timeout-ms']);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const url = process.env.AUDIT_DATABASE_URL || process.env.DATABASE_URL;
  if (paths.length === 0 || !url) {
    console.error(paths.length === 0 ? USAGE : `AUDIT_DATABASE_URL or DATABASE_URL must be set\n${USAGE}`);
    return 2;
  }
  const source = await readReplaySource(paths);
  for (const r of source.rejected) console.error(`rejected ${r.file}:${r.line} (${r.reason})`);
  const client = await connectCommandClient(url, timeoutMs);
  let inserted = 0;
  let refused = 0;
  let held = 0;
  try {
    const table = quoteTablePath(process.env.AUDIT_TABLE || 'audit_log');
    const pseudonymKey = resolvePrivacyOptions({ pseudonymKey: process.env.AUDIT_PRIVACY_PSEUDONYM_KEY || null }).pseudonymKey;
    const keys = [
      ...(pseudonymKey ? [pseudonymKey] : []),
      ...resolveEntryKeys(parseEntryKeys(process.env.AUDIT_INTEGRITY_ENTRY_KEY ?? '')).map((k) => k.key),
    ];
    const heldBack = await heldBackByErasure(
      async (sql, parameters) => (await client.query(sql, parameters)).rows,
      table,
      source.records,
      keys,
    );
    for (const h of heldBack) console.error(`held back ${h.id}: ${h.reason}; not inserted, so that erased values do not come back`);
    held = heldBack.length;
    const skip = new Set(heldBack.map((h) => h.id));
    source.records = source.records.filter((r) => !skip.has(r.id));
    const insert = async (batch: typeof source.records) => {
      const { sql, parameters } = buildAuditInsert(table, batch, { returning: true });
      inserted += (await client.query(sql, parameters)).rowCount ?? 0;
    };
    for (let i = 0; i < source.records.length; i += BATCH) {
      const result = await isolateRefused(source.records.slice(i, i + BATCH), insert);
      for (const { record, error } of result.refused) {
        const { code, message } = sanitizeDbError(error, connectionSecrets({ url }));
        console.error(`rejected ${record.id} by the database (${code}: ${message})`);
      }
      refused += result.refused.length;
    }
  } finally {
    await client.end();
  }
  const rejected = source.rejected.length + refused;
  const present = source.records.length - inserted - refused + source.duplicates;
  const heldText = held > 0 ? `, ${held} held back (subject erased since)` : '';
  console.log(
    `replay: ${inserted} inserted, ${present} already present, ${rejected} rejected${heldText}, ${source.skipped} other lines skipped`,
  );
  return rejected + held > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    // pg's messages can name the host; the URL itself is never printed.
    console.error(`replay failed: ${(error as Error).message}`);
    process.exitCode = isCommandTimeout(error) ? TIMEOUT_EXIT_STATUS : 2;
  },
);
