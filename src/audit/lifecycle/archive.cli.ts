#!/usr/bin/env node
import { runArchive } from './archive-command';

/**
 * `audit-archive` (`npm run audit:archive`): writes one wholly sealed month's rows and the seals
 * that check them (`audit-YYYY-MM.ndjson.gz`, `audit-YYYY-MM.seals.json`). Exits 0 written, 1
 * refused, 2 on a usage, connection or write error, 3 when the database did not answer within
 * `--timeout-ms`. See docs/LIFECYCLE.md, "Archives".
 *
 * @example
 * // AUDIT_DATABASE_URL=postgres://… npx audit-archive --month 2026-01 --out /var/archive/audit
 */
runArchive(process.argv.slice(2), process.env, { out: (line) => console.log(line), err: (line) => console.error(line) }).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(`audit-archive failed: ${(error as Error).message}`);
    process.exitCode = 2;
  },
);
