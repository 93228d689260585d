#!/usr/bin/env node
import { runVerify } from './verify-command';

/**
 * `audit-verify` (`npm run audit:verify`): checks `audit_log` against its seals, and against the
 * witness and the public key when given. Exits 0 clean, 1 on any anomaly, 2 on a usage or
 * connection error, 3 when the database did not answer within `--timeout-ms`. See docs/INTEGRITY.md.
 *
 * @example
 * // AUDIT_DATABASE_URL=postgres://… npx audit-verify --witness sealed.log --public-key audit-seal.pub
 */
runVerify(process.argv.slice(2), process.env, { out: (line) => console.log(line), err: (line) => console.error(line) }).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(`audit-verify failed: ${(error as Error).message}`);
    process.exitCode = 2;
  },
);
