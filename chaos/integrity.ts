import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AUDIT_EVENTS, parseEntryKeys, verifyTrail } from '../src/audit';
import { type ResolvedEntryKey, resolveEntryKeys } from '../src/audit/integrity/entry-auth';
import { type WitnessedSeal } from '../src/audit/integrity/witness';
import { AUDIT_DATABASE, type TestPostgres } from './databases';

/** What `audit-verify` found at the end of the run (integrity on in every app). */
export interface IntegrityVerdict {
  clean: boolean;
  rowsVerified: number;
  sealsVerified: number;
  /** Rows still unsealed when the wait for the sealer ended (0 unless it fell behind). */
  rowsUnsealed: number;
  /** The `audit.sealed` lines the apps wrote: the witness checked against. */
  witnessed: number;
  anomalies: Record<string, number>;
  firstAnomalies: string[];
  /** Rows whose entry code was checked with the entry key and found authentic. */
  rowsAuthentic: number;
}

/**
 * The sealing side of the chaos run: a fresh Ed25519 key and entry key for the apps' environment, the
 * `audit.sealed` lines they write (the witness), and the final check.
 *
 * @example
 * const integrity = new ChaosIntegrity();
 * const env = { ...integrity.env };
 * // …apps pass their lines to integrity.line(event, line)…
 * const verdict = await integrity.verify(auditDb);
 */
export class ChaosIntegrity {
  private readonly publicKey: KeyObject;
  private readonly witness = new Map<number, WitnessedSeal[]>();
  private lines = 0;
  private readonly entryKeys: readonly ResolvedEntryKey[];
  readonly env: Record<string, string>;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    this.publicKey = publicKey;
    this.env = {
      AUDIT_INTEGRITY_ENABLED: 'true',
      AUDIT_INTEGRITY_INTERVAL_MS: '500',
      AUDIT_INTEGRITY_SIGNING_KEY: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
      AUDIT_INTEGRITY_ENTRY_KEY: `chaos:${randomBytes(32).toString('base64')}`,
    };
    this.entryKeys = resolveEntryKeys(parseEntryKeys(this.env.AUDIT_INTEGRITY_ENTRY_KEY));
  }

  /** Takes an event line of an app; keeps the `audit.sealed` ones. */
  line(event: string, text: string): void {
    if (event !== AUDIT_EVENTS.sealed) return;
    const seal = JSON.parse(text) as WitnessedSeal;
    this.lines += 1;
    const known = this.witness.get(seal.seq) ?? [];
    if (!known.some((k) => k.hash === seal.hash && k.prevHash === seal.prevHash)) known.push(seal);
    this.witness.set(seal.seq, known);
  }

  /** Waits (at most `waitMs`) for the apps to seal every row, then verifies against the witness, the public key and the entry key. */
  async verify(auditDb: TestPostgres, waitMs = 30_000): Promise<IntegrityVerdict> {
    const client = new Client({ connectionString: auditDb.url(AUDIT_DATABASE) });
    await client.connect();
    try {
      const deadline = Date.now() + waitMs;
      let report = await verifyTrail(client);
      while (report.rowsUnsealed > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        report = await verifyTrail(client);
      }
      report = await verifyTrail(client, { witness: this.witness, publicKey: this.publicKey, entryKeys: this.entryKeys });
      return {
        // Every row of the run was written by the apps, with the entry key: each must be authentic.
        clean: report.anomalyCount === 0 && report.rowsUnsealed === 0 && report.entryAuth.authentic === report.rowsVerified,
        rowsVerified: report.rowsVerified,
        sealsVerified: report.sealsVerified,
        rowsUnsealed: report.rowsUnsealed,
        rowsAuthentic: report.entryAuth.authentic,
        witnessed: this.lines,
        anomalies: Object.fromEntries(Object.entries(report.byKind).filter(([, n]) => n > 0)),
        firstAnomalies: report.anomalies.slice(0, 20).map((a) => `${a.kind} ${a.row ?? `seal ${a.seal}`}: ${a.detail}`),
      };
    } finally {
      await client.end();
    }
  }
}
