import { type KeyObject } from 'node:crypto';
import { type EntryAuthReport, type EntryChecks } from './entry-checks';
import { type ErasureReport } from '../privacy/personal-checks';
import { merkleRoot } from './merkle';
import { compareKeys, type SortKey } from './row-encoding';
import { GENESIS_HASH, keyIdOf, MANIFEST_ENTRY_BYTES, readManifest, type Seal, sealHash, verifySeal } from './seal';
import { type WitnessedSeal } from './witness';
import { hasBit, type RetainedRows } from '../lifecycle/checkpoint';

/**
 * Kinds of anomaly `audit-verify` reports; see docs/INTEGRITY.md for each.
 *
 * @example
 * const counts = Object.fromEntries(ANOMALY_KINDS.map((kind) => [kind, report.anomalies.filter((a: Anomaly) => a.kind === kind).length]));
 */
export const ANOMALY_KINDS = [
  'row_changed',
  'row_missing',
  'row_forged',
  'row_invalid',
  'seal_changed',
  'seal_missing',
  'seal_out_of_chain',
  'seal_witness_mismatch',
  'seal_signature_invalid',
  'month_dropped',
  'row_personal_changed',
  'row_erased_unaccounted',
  'row_not_erased',
  'archive_mislabelled',
] as const;
/**
 * One of {@link ANOMALY_KINDS}.
 *
 * @example
 * const kind: AnomalyKind = 'row_changed';
 */
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/**
 * One finding: a row (by id) or a seal (by seq), with what was found.
 *
 * @example
 * for (const anomaly of report.anomalies as Anomaly[]) console.log(anomaly.kind, anomaly.row ?? anomaly.seal);
 */
export interface Anomaly {
  kind: AnomalyKind;
  row?: string;
  seal?: number;
  /** A month (`YYYY-MM`) of the partitioned table. */
  month?: string;
  detail: string;
}

/** Anomalies kept in the report; more are counted only. */
const KEPT = 100_000;

/**
 * The result: counts, and the anomalies (the first 100 000; `anomalyCount` counts them all).
 *
 * @example
 * const report: VerifyReport = await verifyTrail(client); // or verifyArchive(file)
 * if (report.anomalyCount > 0) process.exitCode = 1;
 */
export interface VerifyReport {
  rowsVerified: number;
  sealsVerified: number;
  /** Rows after the newest seal: not sealed yet. */
  rowsUnsealed: number;
  anomalies: Anomaly[];
  anomalyCount: number;
  byKind: Record<AnomalyKind, number>;
  /** Entry authentication: checked or not, the boundary, and the rows authentic or written before it. */
  entryAuth: EntryAuthReport;
  /** Retention checkpoints in the chain: how many, the months they removed and their rows. */
  retention: { checkpoints: number; months: string[]; rows: number };
  /** Rows whose personal values were erased, and the `audit_erasure` entries in the trail. */
  erasure: ErasureReport;
}

/**
 * A retention checkpoint: it says so, seals no row and ends where the seal before it ends. A seal
 * changed to say so (its hash then fails) is checked as the seal it was, its rows and all.
 *
 * @example
 * const rowsToRead = isCheckpoint(seal, previous) ? 0 : seal.rowCount; // a checkpoint seals none
 */
export function isCheckpoint(seal: Seal, previous: Seal | null): boolean {
  return !!seal.retention && seal.rowCount === 0 && !!previous && previous.lastTx === seal.lastTx && previous.lastId === seal.lastId;
}

/** What a seal is checked against beyond its own fields: the witness's `audit.sealed` lines and the public key. */
export interface SealChecks {
  witness?: Map<number, WitnessedSeal[]>;
  publicKey?: KeyObject;
}

/**
 * Checks one seal on its own and as a link: its hash over its fields, its `prevHash` against the
 * seal before it (`previous`, when that is seq - 1; the genesis hash for seal 1), the witness's
 * lines of it and of the next seal, and its signature by the public key.
 *
 * @example
 * const found: Anomaly[] = [];
 * checkSeal(seal, previous, { witness, publicKey }, (a) => found.push(a));
 */
export function checkSeal(seal: Seal, previous: Seal | null, options: SealChecks, add: (a: Anomaly) => void): void {
  if (!Number.isFinite(seal.sealedAt)) {
    add({ kind: 'seal_changed', seal: seal.seq, detail: 'its sealed_at is not a finite time, so its fields do not match its hash' });
  } else if (!sealHash(seal).equals(seal.hash)) add({ kind: 'seal_changed', seal: seal.seq, detail: 'its fields do not match its hash' });
  const expectedPrev = previous && previous.seq === seal.seq - 1 ? previous.hash : seal.seq === 1 ? GENESIS_HASH : null;
  if (expectedPrev && !expectedPrev.equals(seal.prevHash)) {
    add({ kind: 'seal_out_of_chain', seal: seal.seq, detail: `its previous hash is not seal ${seal.seq - 1}'s hash` });
  }
  const hex = seal.hash.toString('hex');
  const witnessed = options.witness?.get(seal.seq);
  const next = options.witness?.get(seal.seq + 1);
  if (witnessed?.some((w) => w.hash !== hex) || next?.some((w) => w.prevHash !== hex)) {
    const told = [...new Set([...(witnessed ?? []).map((w) => w.hash), ...(next ?? []).map((w) => w.prevHash)])];
    add({
      kind: 'seal_witness_mismatch',
      seal: seal.seq,
      detail: `hash ${hex.slice(0, 16)}…, the witness has ${told.map((h) => `${h.slice(0, 16)}…`).join(', ')}`,
    });
  }
  if (options.publicKey) {
    const problem = !seal.signature
      ? 'it is not signed'
      : seal.keyId !== keyIdOf(options.publicKey)
        ? `signed with key ${seal.keyId}, not ${keyIdOf(options.publicKey)}`
        : !verifySeal(seal.hash, seal.signature, options.publicKey)
          ? 'the signature does not verify'
          : null;
    if (problem) add({ kind: 'seal_signature_invalid', seal: seal.seq, detail: problem });
  }
}

/**
 * A row as the seal checks take it: its key, its leaf hash, why it can never be sealed (or null),
 * and the finding of its entry check if it failed.
 *
 * @example
 * const row: LeafRow = { id, tx: 812n, leaf: leafHash(fields), problem: null, forged: null };
 */
export interface LeafRow extends SortKey {
  leaf: Buffer;
  /** Why the row can never be sealed (a timestamp out of range), or null. */
  problem: string | null;
  forged?: Anomaly | null;
}

/** The entry checks' findings of `rows[from]` up to `rows[to]`, for rows the seal check did not name already. */
function addForged(rows: LeafRow[], from: number, to: number, found: Anomaly[]): void {
  let named: Set<string | undefined> | undefined;
  for (let i = from; i < to; i++) {
    const anomaly = rows[i].forged;
    if (!anomaly) continue;
    named ??= new Set(found.map((a) => a.row));
    if (!named.has(anomaly.row)) found.push(anomaly);
  }
}

/**
 * Sorts the rows of consecutive seals into those seals (in sealing order) and checks each seal's
 * rows against its manifest and Merkle root; `found[i]` receives seal `i`'s findings, and the
 * entry checks' findings of its rows. A row after the last seal's last row is named forged.
 * `retained` holds the rows removed by retention checkpoints (not missing). Sorts `rows` in place.
 *
 * @example
 * const found = seals.map((): Anomaly[] => []);
 * checkSealedRows(seals, rows, found, retention.retained);
 */
export function checkSealedRows(seals: readonly Seal[], rows: LeafRow[], found: Anomaly[][], retained: RetainedRows): void {
  const last = seals[seals.length - 1];
  rows.sort(compareKeys);
  let from = 0;
  seals.forEach((seal, i) => {
    const end: SortKey = { tx: seal.lastTx === null ? null : BigInt(seal.lastTx), id: seal.lastId };
    let to = from;
    while (to < rows.length && compareKeys(rows[to], end) <= 0) to++;
    checkRows(seal, rows, from, to, (a) => found[i].push(a), retained.get(seal.seq));
    addForged(rows, from, to, found[i]);
    from = to;
  });
  // The rows read end at the last seal's last row, so none can be left; if one were, it is named, never skipped.
  addForged(rows, from, rows.length, found[seals.length - 1]);
  for (const { id } of rows.slice(from)) {
    found[seals.length - 1].push({
      kind: 'row_forged',
      row: id,
      detail: `in the range of seal ${last.seq} but after its last row`,
    });
  }
}

/**
 * Checks one seal's rows (`rows[from]` up to `rows[to]`, in sealing order) against its manifest
 * and root; `retained` is the seal's bitmap of rows removed by retention.
 *
 * @example
 * checkRows(seal, rows, 0, rows.length, (a) => found.push(a));
 */
export function checkRows(seal: Seal, rows: LeafRow[], from: number, to: number, add: (a: Anomaly) => void, retained?: Buffer): void {
  // Rows the seal left out (forged ones) are named, and the root is checked over the rows it sealed.
  const inOrder = matchesInOrder(seal.manifest, rows, from, to);
  // Sealed as they are (by a version that sealed them): still named, such a row is never valid.
  for (let i = from; inOrder && i < to; i++) {
    if (rows[i].problem) add({ kind: 'row_invalid', row: rows[i].id, detail: `${rows[i].problem} (sealed by seal ${seal.seq})` });
  }
  const sealed: Buffer[] = [];
  const rowProblems = inOrder ? 0 : checkAgainstManifest(seal, rows, from, to, add, sealed, retained);
  const leaves = inOrder ? rows.slice(from, to).map((row) => row.leaf) : sealed;
  if (rowProblems === 0 && !merkleRoot(leaves).equals(seal.root)) {
    add({ kind: 'seal_changed', seal: seal.seq, detail: 'its Merkle root does not match its rows' });
  }
}

/**
 * Names each row the seal did not seal, sealed otherwise, or sealed and gone (unless a retention
 * checkpoint removed it: its bit in `retained`); returns how many were changed or gone (removed
 * ones too: the root cannot be computed without them), and puts the leaves of the rows it sealed in `sealed`.
 */
function checkAgainstManifest(
  seal: Seal,
  rows: LeafRow[],
  from: number,
  to: number,
  add: (a: Anomaly) => void,
  sealed: Buffer[],
  retained?: Buffer,
): number {
  const manifest = readManifest(seal.manifest);
  let rowProblems = 0;
  for (let i = from; i < to; i++) {
    const { id, leaf, problem } = rows[i];
    const at = manifest.get(id);
    if (at === undefined) {
      // Left out of the seal: a row that can never be sealed, or one the sealer refused (forged).
      if (problem) add({ kind: 'row_invalid', row: id, detail: `${problem}: never sealed (in the range of seal ${seal.seq})` });
      else add({ kind: 'row_forged', row: id, detail: `in the range of seal ${seal.seq} but not sealed by it` });
    } else {
      manifest.delete(id);
      sealed.push(leaf);
      if (leaf.compare(seal.manifest, at, at + 8, 0, 8) !== 0) {
        rowProblems += 1;
        add({ kind: 'row_changed', row: id, detail: `differs from what seal ${seal.seq} sealed${problem ? `: ${problem}` : ''}` });
      } else if (problem) {
        add({ kind: 'row_invalid', row: id, detail: `${problem} (sealed by seal ${seal.seq})` });
      }
    }
  }
  for (const [id, at] of manifest) {
    if (hasBit(retained, (at - 16) / MANIFEST_ENTRY_BYTES)) continue;
    add({ kind: 'row_missing', row: id, detail: `sealed by seal ${seal.seq}, no longer in the table` });
  }
  return rowProblems + manifest.size;
}

/**
 * Whether the rows are the manifest's, one for one and in its order (the order they were sealed
 * in), each with the leaf-hash prefix sealed: the untouched seal, checked without building a map.
 */
function matchesInOrder(manifest: Buffer, rows: LeafRow[], from: number, to: number): boolean {
  if ((to - from) * MANIFEST_ENTRY_BYTES !== manifest.length) return false;
  for (let i = from, at = 0; i < to; i++, at += MANIFEST_ENTRY_BYTES) {
    const { id, leaf } = rows[i];
    if (!sameUuid(id, manifest.toString('hex', at, at + 16)) || leaf.compare(manifest, at + 16, at + 24, 0, 8) !== 0) return false;
  }
  return true;
}

/** Whether a canonical UUID text and 32 hex digits name the same id. */
function sameUuid(uuid: string, hex: string): boolean {
  if (uuid.length !== 36) return false;
  for (let u = 0, h = 0; u < 36; u++) {
    if (u === 8 || u === 13 || u === 18 || u === 23) continue;
    if (uuid.charCodeAt(u) !== hex.charCodeAt(h++)) return false;
  }
  return true;
}

/**
 * A row after the newest seal (`last`), judged: null when it may still be sealed, else why not.
 * Forged: below the seal's horizon (or without a transaction id after the first rows), a
 * transaction id no transaction has had yet (`next`, from the snapshot), or its entry check
 * failed (`forged`); invalid: it can never be sealed (`problem`). The horizon is `trusted`'s: the
 * newest seal the chain checks found nothing wrong with (a link appended by the app's role, its
 * horizon made up, never makes the module's own rows forged).
 *
 * @example
 * const anomaly = judgeTailRow({ id, tx: '900', problem: null, forged: null }, newest, '1200');
 */
export function judgeTailRow(
  row: { id: string; tx: string | null; problem: string | null; forged: Anomaly | null },
  last: Seal | null,
  next: string,
  trusted: Seal | null = last,
): Anomaly | null {
  const { id, tx, problem, forged } = row;
  const key = tx === null ? null : BigInt(tx);
  const horizon = trusted ? BigInt(trusted.horizon) : 0n;
  const backdated = key === null ? !!trusted && (trusted.lastTx !== null || horizon > 0n) : key < horizon;
  if (backdated && horizon > BigInt(next)) {
    const behind = `this server's transaction ids (next ${next}) are behind seal ${trusted?.seq}'s horizon ${horizon}`;
    return {
      kind: 'row_forged',
      row: id,
      detail: `after the newest seal but older than its horizon: ${behind} (a restore onto a new server? docs/RUNBOOK.md section 12)`,
    };
  }
  if (backdated) return { kind: 'row_forged', row: id, detail: `after the newest seal but older than its horizon` };
  if (key !== null && key >= BigInt(next)) {
    return {
      kind: 'row_forged',
      row: id,
      detail: `its transaction id ${tx} is from the future (no transaction has had one from ${next} on)`,
    };
  }
  if (problem) return { kind: 'row_invalid', row: id, detail: `${problem}: never sealed` };
  return forged;
}

/** Findings that make a seal's fields (its horizon) untrustworthy. */
const UNTRUSTED_KINDS: ReadonlySet<AnomalyKind> = new Set([
  'seal_changed',
  'seal_signature_invalid',
  'seal_out_of_chain',
  'seal_witness_mismatch',
]);

/**
 * Walks a seal chain in seq order: each seal checked by {@link checkSeal} and by the entry
 * checks (its boundary), the seqs it skips named `seal_missing`, and, at the end, the seals the
 * witness has that the chain has not.
 *
 * @example
 * const chain = new SealChain({ witness, publicKey }, entries);
 * for (const seal of seals) chain.next(seal).found; // that seal's findings
 * chain.unwitnessed('audit_seal'); // seals cut off
 */
export class SealChain {
  /** The seal checked last, or null before the first. */
  previous: Seal | null = null;
  /** The newest seal checked whose own checks found nothing (no changed, unsigned, out-of-chain or unwitnessed seal), or null. */
  trusted: Seal | null = null;
  /** The newest signed seal checked, or null. */
  private signedSeq: number | null = null;
  private expectedSeq = 1;
  private readonly seen = new Set<number>();

  constructor(
    private readonly options: SealChecks,
    private readonly entries: EntryChecks,
    /** The first seq expected: a chain segment starts after seal 1. */
    first = 1,
  ) {
    this.expectedSeq = first;
  }

  /** Checks the next seal; returns its findings, whether it is a retention checkpoint, and the seal before it. */
  next(seal: Seal): { found: Anomaly[]; checkpoint: boolean; previous: Seal | null } {
    const found: Anomaly[] = [];
    this.seen.add(seal.seq);
    for (let missing = this.expectedSeq; missing < seal.seq && missing < this.expectedSeq + 1000; missing++) {
      found.push({ kind: 'seal_missing', seal: missing, detail: 'absent from audit_seal: the chain skips it' });
    }
    checkSeal(seal, this.previous, this.options, (a) => found.push(a));
    // Without the public key: a chain that was signed does not go on unsigned (the app's role can append to audit_seal).
    if (!seal.signature && this.signedSeq !== null && !this.options.publicKey) {
      found.push({ kind: 'seal_signature_invalid', seal: seal.seq, detail: `it is not signed, while seal ${this.signedSeq} before it is` });
    }
    if (seal.signature) this.signedSeq = seal.seq;
    this.entries.seal(seal, (a) => found.push(a));
    if (!found.some((a) => a.seal === seal.seq && UNTRUSTED_KINDS.has(a.kind))) this.trusted = seal;
    const previous = this.previous;
    this.previous = seal;
    this.expectedSeq = seal.seq + 1;
    return { found, checkpoint: isCheckpoint(seal, previous), previous };
  }

  /** The seals in the witness that were never given to {@link next} (`where` names where they should be). */
  unwitnessed(where: string): Anomaly[] {
    const found: Anomaly[] = [];
    for (const [seq, witnessed] of this.options.witness ?? []) {
      if (this.seen.has(seq)) continue;
      const w = witnessed[0];
      found.push({ kind: 'seal_missing', seal: seq, detail: `in the witness (${w.rows} rows, last row ${w.lastId}) but not in ${where}` });
    }
    return found;
  }
}

/**
 * A report with nothing counted yet.
 *
 * @example
 * const report = emptyReport();
 * report.byKind.row_changed; // 0
 */
export function emptyReport(): VerifyReport {
  const byKind = Object.fromEntries(ANOMALY_KINDS.map((k) => [k, 0])) as Record<AnomalyKind, number>;
  const entryAuth = { checked: false, boundary: null, authentic: 0, beforeAuthentication: 0, unchecked: 0 };
  const retention = { checkpoints: 0, months: [], rows: 0 };
  const erasure = { erasedRows: 0, erasureEntries: 0 };
  return { rowsVerified: 0, sealsVerified: 0, rowsUnsealed: 0, anomalies: [], anomalyCount: 0, byKind, entryAuth, retention, erasure };
}

/**
 * Counts the findings into the report (the first 100 000 kept). A row reported missing from one
 * seal and forged in another is one row whose position (`tx`) was changed: it is named changed.
 *
 * @example
 * const final = finishReport({ ...report, entryAuth: entries.report }, found);
 */
export function finishReport(report: VerifyReport, found: Anomaly[]): VerifyReport {
  const missing = new Set(found.filter((a) => a.kind === 'row_missing').map((a) => a.row));
  const moved = new Set(found.filter((a) => a.kind === 'row_forged' && missing.has(a.row)).map((a) => a.row));
  for (const anomaly of found) {
    if (anomaly.row !== undefined && moved.has(anomaly.row)) {
      if (anomaly.kind === 'row_missing') continue;
      if (anomaly.kind === 'row_forged')
        Object.assign(anomaly, { kind: 'row_changed', detail: `moved out of its seal (${anomaly.detail})` });
    }
    report.anomalyCount += 1;
    report.byKind[anomaly.kind] += 1;
    if (report.anomalies.length < KEPT) report.anomalies.push(anomaly);
  }
  return report;
}
