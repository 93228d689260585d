import { type KeyObject } from 'node:crypto';
import { type Client } from 'pg';
import { quoteTablePath } from '../audit-insert-sql';
import { merkleRoot } from './merkle';
import { keyRange, LEAF_SQL, type RowKey } from './row-encoding';
import { GENESIS_HASH, keyIdOf, readManifest, type Seal, sealHash, verifySeal } from './seal';
import { SEAL_COLUMNS_SQL, sealTableOf, toSeal } from './seal-store';
import { type WitnessedSeal } from './witness';

/** Kinds of anomaly `audit-verify` reports; see docs/INTEGRITY.md for each. */
export const ANOMALY_KINDS = [
  'row_changed',
  'row_missing',
  'row_forged',
  'seal_changed',
  'seal_missing',
  'seal_out_of_chain',
  'seal_witness_mismatch',
  'seal_signature_invalid',
] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/** One finding: a row (by id) or a seal (by seq), with what was found. */
export interface Anomaly {
  kind: AnomalyKind;
  row?: string;
  seal?: number;
  detail: string;
}

/** What {@link verifyTrail} checks against, beyond the tables themselves. */
export interface VerifyOptions {
  /** `schema.table` of the audit log (default `audit_log`). */
  table?: string;
  /** Only the rows of seals made in this range (ms since the epoch); the chain is always checked whole. */
  from?: number;
  to?: number;
  witness?: Map<number, WitnessedSeal[]>;
  publicKey?: KeyObject;
  /**
   * More connections for checking seals' rows in parallel (`jobs` in all, default 1), each
   * reading the same snapshot as `client`: the server hashes rows on as many cores.
   */
  connect?: () => Promise<Client>;
  jobs?: number;
}

/** The result: counts, and the anomalies (the first 100 000; `anomalyCount` counts them all). */
export interface VerifyReport {
  rowsVerified: number;
  sealsVerified: number;
  /** Rows after the newest seal: not sealed yet. */
  rowsUnsealed: number;
  anomalies: Anomaly[];
  anomalyCount: number;
  byKind: Record<AnomalyKind, number>;
}

const FETCH = 10_000;
const KEPT = 100_000;

/**
 * Checks the audit log against its seals (and the witness and public key when given), reading in
 * one repeatable-read snapshot, rows through a cursor a seal at a time: memory stays within
 * `jobs` seals' manifests whatever the table's size.
 *
 * @example
 * const report = await verifyTrail(client, { witness: await readWitness(['export.log'], 'audit/audit_log'), publicKey });
 * report.anomalyCount; // 0 when clean
 */
export async function verifyTrail(client: Client, options: VerifyOptions = {}): Promise<VerifyReport> {
  const table = options.table ?? 'audit_log';
  const report = emptyReport();
  const found: Anomaly[] = [];
  const add = (anomaly: Anomaly) => found.push(anomaly);
  const workers: Client[] = [];
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const jobs = options.connect ? Math.max(1, options.jobs ?? 1) : 1;
    if (jobs > 1 && options.connect) {
      const [{ snapshot }] = (await client.query<{ snapshot: string }>('SELECT pg_export_snapshot() AS snapshot')).rows;
      for (let i = 0; i < jobs; i++) {
        const worker = await options.connect();
        workers.push(worker);
        await worker.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await worker.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/[^0-9A-F-]/gi, '')}'`);
      }
    } else {
      workers.push(client);
    }
    const idle = [...workers];
    // Row checks run `jobs` at a time; their findings are merged in seal order, as if run one by one.
    const inFlight: { done: Promise<number>; found: Anomaly[] }[] = [];
    const merge = async () => {
      const oldest = inFlight.shift() as (typeof inFlight)[number];
      report.rowsVerified += await oldest.done;
      found.push(...oldest.found);
    };
    let previous: Seal | null = null;
    let expectedSeq = 1;
    const seen = new Set<number>();
    for (let after = 0; ;) {
      const { rows } = await client.query(
        `SELECT ${SEAL_COLUMNS_SQL} FROM ${sealTableOf(table)} AS s WHERE s.seq > $1 ORDER BY s.seq LIMIT 8`,
        [after],
      );
      if (rows.length === 0) break;
      for (const row of rows as Record<string, unknown>[]) {
        const seal = toSeal(row);
        after = seal.seq;
        seen.add(seal.seq);
        for (let missing = expectedSeq; missing < seal.seq && missing < expectedSeq + 1000; missing++) {
          add({ kind: 'seal_missing', seal: missing, detail: 'absent from audit_seal: the chain skips it' });
        }
        const sealFound: Anomaly[] = [];
        checkSeal(seal, previous, options, (a) => sealFound.push(a));
        const inRange = (options.from ?? -Infinity) <= seal.sealedAt && seal.sealedAt <= (options.to ?? Infinity);
        while (inFlight.length >= jobs) await merge();
        if (inRange) {
          const worker = idle.pop() as Client;
          const after = previous && { tx: previous.lastTx, id: previous.lastId };
          const done = checkRows(worker, table, seal, after, (a) => sealFound.push(a)).finally(() => idle.push(worker));
          // Awaited in merge(); marked handled so that a failure while others run is not an unhandled rejection.
          done.catch(() => undefined);
          inFlight.push({ done, found: sealFound });
          report.sealsVerified += 1;
        } else {
          found.push(...sealFound);
        }
        previous = seal;
        expectedSeq = seal.seq + 1;
      }
    }
    while (inFlight.length > 0) await merge();
    for (const [seq, witnessed] of options.witness ?? []) {
      const at = Date.parse(witnessed[0].sealedAt);
      if (seen.has(seq) || at < (options.from ?? -Infinity) || at > (options.to ?? Infinity)) continue;
      const w = witnessed[0];
      add({ kind: 'seal_missing', seal: seq, detail: `in the witness (${w.rows} rows, last row ${w.lastId}) but not in audit_seal` });
    }
    report.rowsUnsealed = await checkTail(client, table, previous, add);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    for (const worker of workers) if (worker !== client) await worker.end().catch(() => undefined);
  }
  return finish(report, found);
}

function checkSeal(seal: Seal, previous: Seal | null, options: VerifyOptions, add: (a: Anomaly) => void): void {
  if (!sealHash(seal).equals(seal.hash)) add({ kind: 'seal_changed', seal: seal.seq, detail: 'its fields do not match its hash' });
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

async function checkRows(client: Client, table: string, seal: Seal, after: RowKey | null, add: (a: Anomaly) => void): Promise<number> {
  const manifest = readManifest(seal.manifest);
  const leaves: Buffer[] = [];
  let rowProblems = 0;
  await forEachRow(client, table, after, { tx: seal.lastTx, id: seal.lastId }, ([id, , leaf]) => {
    leaves.push(leaf);
    const sealed = manifest.get(id);
    if (sealed === undefined) {
      rowProblems += 1;
      add({ kind: 'row_forged', row: id, detail: `in the range of seal ${seal.seq} but not sealed by it` });
    } else {
      manifest.delete(id);
      if (sealed !== leaf.toString('hex', 0, 8)) {
        rowProblems += 1;
        add({ kind: 'row_changed', row: id, detail: `differs from what seal ${seal.seq} sealed` });
      }
    }
  });
  for (const id of manifest.keys()) add({ kind: 'row_missing', row: id, detail: `sealed by seal ${seal.seq}, no longer in the table` });
  rowProblems += manifest.size;
  if (rowProblems === 0 && !merkleRoot(leaves).equals(seal.root)) {
    add({ kind: 'seal_changed', seal: seal.seq, detail: 'its Merkle root does not match its rows' });
  }
  return leaves.length;
}

/** Rows after the newest seal: below its horizon (or without a transaction id after the first rows), they are forged. */
async function checkTail(client: Client, table: string, last: Seal | null, add: (a: Anomaly) => void): Promise<number> {
  let count = 0;
  const horizon = last ? BigInt(last.horizon) : 0n;
  await forEachRow(client, table, last && { tx: last.lastTx, id: last.lastId }, null, (row) => {
    count += 1;
    const [id, tx] = row;
    const backdated = tx === null ? !!last && (last.lastTx !== null || horizon > 0n) : BigInt(tx) < horizon;
    if (backdated) add({ kind: 'row_forged', row: id, detail: `after the newest seal but older than its horizon` });
  });
  return count;
}

async function forEachRow(
  client: Client,
  table: string,
  after: RowKey | null,
  upTo: RowKey | null,
  each: (row: [id: string, tx: string | null, leaf: Buffer]) => void,
): Promise<void> {
  const { where, parameters } = keyRange(after, upTo);
  // Leaves are hashed by the server: 32 bytes a row travel, not the row.
  await client.query(
    `DECLARE verify_rows NO SCROLL CURSOR FOR SELECT id::text, tx::text, ${LEAF_SQL} FROM ${quoteTablePath(table)} AS l WHERE ${where} ORDER BY l.tx ASC NULLS FIRST, l.id`,
    parameters,
  );
  try {
    for (;;) {
      const { rows } = await client.query<[string, string | null, Buffer]>({ text: `FETCH ${FETCH} FROM verify_rows`, rowMode: 'array' });
      rows.forEach(each);
      if (rows.length < FETCH) break;
    }
  } finally {
    await client.query('CLOSE verify_rows');
  }
}

function emptyReport(): VerifyReport {
  const byKind = Object.fromEntries(ANOMALY_KINDS.map((k) => [k, 0])) as Record<AnomalyKind, number>;
  return { rowsVerified: 0, sealsVerified: 0, rowsUnsealed: 0, anomalies: [], anomalyCount: 0, byKind };
}

/** A row reported missing from one seal and forged in another is one row whose position (`tx`) was changed. */
function finish(report: VerifyReport, found: Anomaly[]): VerifyReport {
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
