#!/usr/bin/env node
import { writeStderrLine } from '../sinks/stderr-line';
import { runRetention } from './retention-command';

/**
 * `audit-retention` (`npm run audit:retention`): removes whole, sealed months older than the
 * window, each recorded by a signed checkpoint in the seal chain; `--dry-run` only lists. Exits 0
 * done, 1 when a month could not be removed, 2 on a usage or connection error, 3 when the database
 * did not answer within `--timeout-ms`. See docs/LIFECYCLE.md.
 *
 * @example
 * // AUDIT_DATABASE_URL=postgres://… npx audit-retention --months 72 --legal-hold 2026-01 --dry-run
 */
runRetention(process.argv.slice(2), process.env, { out: (line) => console.log(line), err: writeStderrLine }).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(`audit-retention failed: ${(error as Error).message}`);
    process.exitCode = 2;
  },
);
