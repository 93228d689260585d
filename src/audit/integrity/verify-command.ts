import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type Client } from 'pg';
import { connectCommandClient, isCommandTimeout } from '../command-client';
import { connectionSecrets, sanitizeDbError } from '../db-error';
import { parseEntryKeys, resolveEntryKeys, type ResolvedEntryKey } from './entry-auth';
import { trailName } from './seal-store';
import { type Anomaly, ANOMALY_KINDS, verifyTrail, type VerifyReport } from './verifier';
import { PIN_SEARCH_PATH_SQL } from './search-path';
import { erasureLine } from '../privacy/personal-checks';
import { readWitness, type WitnessedSeal } from './witness';
import { sealsPathOf, verifyArchive } from '../lifecycle/archive-verifier';
import { parseCommandArgs, parseTimeoutMs, TIMEOUT_EXIT_STATUS, TIMEOUT_OPTION, TIMEOUT_USAGE } from '../command-args';
import { resolvePrivacyOptions } from '../privacy/privacy-options';

const PIN_SESSION_SQL = PIN_SEARCH_PATH_SQL.replace('SET LOCAL', 'SET');

export const VERIFY_USAGE = `usage: npm run audit:verify -- [options]   (or: npx audit-verify [options])
  --url <postgres://…>     the audit database (default: AUDIT_DATABASE_URL or DATABASE_URL)
  --from <time>, --to <time>  re-hash only the rows of seals made in this range (ISO 8601); the chain,
                           the witness and the rows after the newest seal are always checked whole
  --witness <file>         a CloudWatch export of the audit.sealed lines (repeatable)
  --public-key <file|key>  the Ed25519 public key (PEM, or base64 DER) the seals must be signed with
  --entry-key <id:secret>  the entry keys, comma-separated or the option repeated (default: AUDIT_INTEGRITY_ENTRY_KEY): every row's code is checked
  --table <schema.table>   the audit table (default: AUDIT_TABLE or audit_log; without a schema: public)
  --jobs <n>               connections checking seals in parallel, on one snapshot (default 4)
  --trail <database/table> whose audit.sealed lines to take from the witness (needed when it holds several trails)
  --archive <file>         check an archive (audit-archive's audit-YYYY-MM.seals.json or .ndjson.gz) with no database:
                           its rows against its seals, the seals' chain, --public-key, --witness and --entry-key
${TIMEOUT_USAGE}
environment: AUDIT_PRIVACY_PSEUDONYM_KEY, when erasures name their subjects under it (privacy.pseudonymKey):
                           rows an erasure should have taken, still holding values, are looked for with it
exit status: 0 clean, 1 anomalies found, 2 usage or connection error, 3 the database did not answer within --timeout-ms`;

/** Where the command writes: the report to `out`, usage and errors to `err`. */
export interface VerifyOutput {
  out(line: string): void;
  err(line: string): void;
}

/**
 * `audit-verify`: checks the audit log against its seals, the witness and the public key, prints
 * each anomaly and the counts, and returns the exit status (0 clean, 1 anomalies, 2 usage or
 * connection error, 3 the database did not answer within `--timeout-ms`).
 *
 * @example
 * const status = await runVerify(['--witness', 'export.log'], process.env, { out: console.log, err: console.error });
 */
export async function runVerify(argv: string[], env: Record<string, string | undefined>, io: VerifyOutput): Promise<number> {
  let args: Omit<ReturnType<typeof parse>, 'jobs'> & { jobs: number };
  let timeoutMs: number;
  let publicKey: KeyObject | undefined;
  let entryKeys: readonly ResolvedEntryKey[] = [];
  let pseudonymKey: KeyObject | null = null;
  let range: { from?: number; to?: number };
  try {
    const { jobs = '4', ...rest } = parse(argv);
    if (!/^\d+$/.test(jobs) || Number(jobs) < 1 || Number(jobs) > 32) {
      throw new Error(`--jobs must be an integer from 1 to 32, got ${JSON.stringify(jobs)}`);
    }
    args = { ...rest, jobs: Number(jobs) };
    timeoutMs = parseTimeoutMs(args['timeout-ms']);
    publicKey = args['public-key'] === undefined ? undefined : readPublicKey(args['public-key']);
    range = { from: time(args.from, '--from'), to: time(args.to, '--to') };
    entryKeys = readEntryKeys(args['entry-key']?.join(',') ?? env.AUDIT_INTEGRITY_ENTRY_KEY);
    pseudonymKey = readPseudonymKey(env.AUDIT_PRIVACY_PSEUDONYM_KEY);
  } catch (error) {
    io.err(`${(error as Error).message}\n${VERIFY_USAGE}`);
    return 2;
  }
  if (args.help) {
    io.out(VERIFY_USAGE);
    return 0;
  }
  if (args.archive !== undefined) return runArchiveVerify(args.archive, args.witness, args.trail, { publicKey, entryKeys }, io);
  const url = args.url || env.AUDIT_DATABASE_URL || env.DATABASE_URL;
  if (!url) {
    io.err(`--url, AUDIT_DATABASE_URL or DATABASE_URL must be set\n${VERIFY_USAGE}`);
    return 2;
  }
  const table = args.table || env.AUDIT_TABLE || 'audit_log';
  const started = process.hrtime.bigint();
  let client: Client | undefined;
  let report;
  let witness;
  try {
    client = await connectCommandClient(url, timeoutMs);
    // Whatever the role's own search_path: no name this session uses resolves outside pg_catalog.
    await client.query(PIN_SESSION_SQL);
    const [{ name }] = (await client.query<{ name: string }>('SELECT current_database() AS name')).rows;
    if (args.witness) {
      let trails;
      try {
        trails = await readWitness(args.witness);
      } catch (error) {
        io.err(`cannot read the witness: ${(error as Error).message}`);
        return 2;
      }
      // A restored copy has another database name: a witness of one trail is taken as this one's.
      const trail = args.trail ?? (trails.size === 1 ? [...trails.keys()][0] : trailName(name, table));
      witness = trails.get(trail);
      if (!witness) {
        io.err(
          `the witness holds no audit.sealed lines of trail ${trail} (it holds: ${[...trails.keys()].join(', ') || 'none'}); name one with --trail`,
        );
        return 2;
      }
    }
    const connect = async () => {
      const worker = await connectCommandClient(url, timeoutMs);
      try {
        await worker.query(PIN_SESSION_SQL);
      } catch (error) {
        // Not handed to the verifier yet: no one else would end it.
        await worker.end().catch(() => undefined);
        throw error;
      }
      return worker;
    };
    report = await verifyTrail(client, { table, ...range, witness, publicKey, connect, jobs: args.jobs, entryKeys, pseudonymKey });
  } catch (error) {
    const { code, message } = sanitizeDbError(error, connectionSecrets({ url }));
    io.err(`audit-verify failed: ${code}: ${message}`);
    return isCommandTimeout(error) ? TIMEOUT_EXIT_STATUS : 2;
  } finally {
    await client?.end().catch(() => undefined);
  }
  printReport(report, io, { started, witness, publicKey });
  return report.anomalyCount === 0 ? 0 : 1;
}

/** `--archive`: the archive checked offline, printed as the database's report is, with what the archive holds. */
async function runArchiveVerify(
  path: string,
  witnessFiles: string[] | undefined,
  trail: string | undefined,
  keys: { publicKey?: KeyObject; entryKeys: readonly ResolvedEntryKey[] },
  io: VerifyOutput,
): Promise<number> {
  const started = process.hrtime.bigint();
  let result;
  let witness: Map<number, WitnessedSeal[]> | undefined;
  try {
    if (witnessFiles) {
      const trails = await readWitness(witnessFiles);
      const header = JSON.parse(await readFile(sealsPathOf(path), 'utf8')) as { trail?: string };
      const name = trail ?? (trails.size === 1 ? [...trails.keys()][0] : String(header.trail));
      witness = trails.get(name);
      if (!witness) {
        io.err(
          `the witness holds no audit.sealed lines of trail ${name} (it holds: ${[...trails.keys()].join(', ') || 'none'}); name one with --trail`,
        );
        return 2;
      }
    }
    result = await verifyArchive(path, { witness, publicKey: keys.publicKey, entryKeys: keys.entryKeys });
  } catch (error) {
    const { code, message } = sanitizeDbError(error, []);
    io.err(`audit-verify failed: cannot check the archive ${path}: ${code}: ${message}`);
    return 2;
  }
  const { report, archive } = result;
  const segment = archive.segment ? `seals ${archive.segment[0]}–${archive.segment[1]}` : 'no seals';
  io.out(`archive: ${archive.month} of trail ${archive.trail}, ${archive.monthRows} rows of the month, ${segment}`);
  const held = archive.monthCheckpoints.length
    ? `held to its retention checkpoint (seal ${archive.monthCheckpoints.join(', ')})`
    : "not held to a retention checkpoint (none known: neither the witness nor the archive holds the month's)";
  io.out(`archive: the month ${held}; the trail ${witness ? 'held to the witness' : 'not checked (no --witness)'}`);
  if (archive.damaged) io.out(`archive: ${archive.damaged}`);
  const clean = report.anomalyCount === 0 && !archive.damaged;
  printReport(report, io, { started, witness, publicKey: keys.publicKey, clean });
  return clean ? 0 : 1;
}

/** Prints the anomalies, the counts and the result line. */
function printReport(
  report: VerifyReport,
  io: VerifyOutput,
  {
    started,
    witness,
    publicKey,
    clean = report.anomalyCount === 0,
  }: { started: bigint; witness?: Map<number, WitnessedSeal[]>; publicKey?: KeyObject; clean?: boolean },
): void {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const a of report.anomalies) io.out(`ANOMALY ${a.kind} ${anomalySubject(a)}: ${a.detail}`);
  if (report.anomalyCount > report.anomalies.length) io.out(`… and ${report.anomalyCount - report.anomalies.length} more anomalies`);
  io.out(
    `audit-verify: ${report.rowsVerified} rows verified, ${report.sealsVerified} seals verified, ` +
      `${report.rowsUnsealed} rows not sealed yet, ${report.anomalyCount} anomalies` +
      (witness ? `, against a witness of ${witness.size} seals` : '') +
      (publicKey ? ', signatures checked' : ''),
  );
  io.out(entryAuthLine(report.entryAuth));
  const { checkpoints, months, rows } = report.retention;
  if (checkpoints > 0)
    io.out(`retention: ${checkpoints} checkpoints, months ${months.join(', ')} removed (${rows} rows), each in the chain`);
  io.out(erasureLine(report.erasure));
  const kinds = ANOMALY_KINDS.filter((k) => report.byKind[k] > 0).map((k) => `${k} ${report.byKind[k]}`);
  io.out(`anomalies by kind: ${kinds.length ? kinds.join(', ') : 'none'}`);
  io.out(`${Math.round((report.rowsVerified + report.rowsUnsealed) / Math.max(seconds, 1e-3))} rows/s in ${seconds.toFixed(2)} s`);
  io.out(clean ? 'result: CLEAN' : 'result: ANOMALIES FOUND');
}

function parse(argv: string[]) {
  return parseCommandArgs(argv, {
    url: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    witness: { type: 'string', multiple: true },
    'public-key': { type: 'string' },
    'entry-key': { type: 'string', multiple: true },
    table: { type: 'string' },
    trail: { type: 'string' },
    jobs: { type: 'string' },
    archive: { type: 'string' },
    ...TIMEOUT_OPTION,
    help: { type: 'boolean', short: 'h' },
  });
}

function time(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) throw new Error(`${name} must be a time such as 2026-11-28T00:00:00Z, got ${JSON.stringify(value)}`);
  return at;
}

function readPublicKey(value: string): KeyObject {
  const text = existsSync(value) ? readFileSync(value, 'utf8').trim() : value.trim();
  let key: KeyObject;
  try {
    key = text.startsWith('-----BEGIN')
      ? createPublicKey(text)
      : createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new Error('--public-key must be an Ed25519 public key: a PEM file, PEM text or base64 DER (SPKI)');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('--public-key must be an Ed25519 public key');
  return key;
}

function readEntryKeys(text: string | undefined): readonly ResolvedEntryKey[] {
  if (text === undefined || text.trim() === '') return [];
  try {
    return resolveEntryKeys(parseEntryKeys(text));
  } catch (error) {
    // The option's own message names the bad key's place, never its secret.
    const detail = (error as Error).message.replace(/^AuditModule option "integrity\.entryKeys/, '"entry key ');
    throw new Error(
      `--entry-key (or AUDIT_INTEGRITY_ENTRY_KEY) must be <id>:<secret>[,<id>:<secret>…], each secret at least 32 characters: ${detail}`,
    );
  }
}

function anomalySubject(a: Anomaly): string {
  return a.row !== undefined ? `row ${a.row}` : a.month !== undefined ? `month ${a.month}` : `seal ${a.seal}`;
}

function entryAuthLine(auth: VerifyReport['entryAuth']): string {
  const before = `${auth.beforeAuthentication} rows written before entry authentication`;
  const boundary = auth.boundary === null ? 'no boundary in the seal chain yet' : `from transaction ${auth.boundary} on`;
  return auth.checked
    ? `entry authentication: checked, ${auth.authentic} rows authentic, ${before} (${boundary})`
    : `entry authentication: NOT CHECKED (no entry key: --entry-key or AUDIT_INTEGRITY_ENTRY_KEY), ${auth.unchecked} rows with a code not checked, ${before} (${boundary})`;
}

function readPseudonymKey(value: string | undefined): KeyObject | null {
  if (!value) return null;
  try {
    return resolvePrivacyOptions({ pseudonymKey: value }).pseudonymKey;
  } catch (error) {
    throw new Error(`AUDIT_PRIVACY_PSEUDONYM_KEY ${(error as Error).message.replace(/^AuditModule option "privacy\.pseudonymKey" /, '')}`);
  }
}
