#!/usr/bin/env node
import { runErase } from './erase-command';

/**
 * `audit-erase` (`npm run audit:erase`): erases the personal values of a user's or an entity's
 * rows, seals intact, and records the erasure as an `audit_erasure` entry; `--dry-run` lists what
 * would change. Exits 0 when done, 2 on a usage or database error (a COMMIT never answered among
 * them), 3 when the database did not answer within `--timeout-ms` before the COMMIT (nothing was
 * erased). See docs/PRIVACY.md.
 *
 * @example
 * // AUDIT_DATABASE_URL=postgres://… AUDIT_INTEGRITY_ENTRY_KEY=k1:… npx audit-erase --user u-42 --by dpo --reason "request #118"
 */
runErase(process.argv.slice(2), process.env, { out: (line) => console.log(line), err: (line) => console.error(line) }).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(`audit-erase failed: ${(error as Error).message}`);
    process.exitCode = 2;
  },
);
