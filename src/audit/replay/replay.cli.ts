#!/usr/bin/env node
import { Client } from 'pg';
import { buildAuditInsert, quoteTablePath } from '../audit.writer';
import { readReplaySource } from './replay-source';

const USAGE = 'usage: npm run audit:replay -- <spool dir | segment | CloudWatch export>…  (reads AUDIT_DATABASE_URL or DATABASE_URL)';
const BATCH = 500;

/**
 * Inserts the audit entries found in spool segments or CloudWatch exports into `audit_log`,
 * idempotently (ON CONFLICT DO NOTHING on the entry's id), and prints what it inserted, what was
 * already present and what it rejected. Exits 1 when any line was rejected, 2 on a usage or
 * database error.
 *
 * @example
 * // AUDIT_DATABASE_URL=postgres://… npm run audit:replay -- /var/spool/audit cloudwatch-export.log
 */
async function main(paths: string[]): Promise<number> {
  const url = process.env.AUDIT_DATABASE_URL || process.env.DATABASE_URL;
  if (paths.length === 0 || !url) {
    console.error(paths.length === 0 ? USAGE : `AUDIT_DATABASE_URL or DATABASE_URL must be set\n${USAGE}`);
    return 2;
  }
  const source = await readReplaySource(paths);
  for (const r of source.rejected) console.error(`rejected ${r.file}:${r.line} (${r.reason})`);
  const client = new Client({ connectionString: url });
  await client.connect();
  let inserted = 0;
  try {
    const table = quoteTablePath(process.env.AUDIT_TABLE || 'audit_log');
    for (let i = 0; i < source.records.length; i += BATCH) {
      const { sql, parameters } = buildAuditInsert(table, source.records.slice(i, i + BATCH), { returning: true });
      inserted += (await client.query(sql, parameters)).rowCount ?? 0;
    }
  } finally {
    await client.end();
  }
  const present = source.records.length - inserted + source.duplicates;
  console.log(
    `replay: ${inserted} inserted, ${present} already present, ${source.rejected.length} rejected, ${source.skipped} other lines skipped`,
  );
  return source.rejected.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    // pg's messages can name the host; the URL itself is never printed.
    console.error(`replay failed: ${(error as Error).message}`);
    process.exitCode = 2;
  },
);
