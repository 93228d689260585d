import { createPrivateKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { Client } from 'pg';
import { AuditLog, AuditSealer, AuditService, verifyTrail } from '../src/audit';
import { LEAF_FIELDS, LEAF_SQL } from '../src/audit/integrity/row-encoding';
import { MANIFEST_ENTRY_BYTES, readManifest, sealHash } from '../src/audit/integrity/seal';
import { SEAL_COLUMNS_SQL, sealOnce, toSeal } from '../src/audit/integrity/seal-store';
import { startSealingApp, sealingKeys, verify, witnessText } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A superuser tampers with a sealed trail, one kind of tampering per case, each on its own copy
// of the same trail (3 seals of 30 rows); `audit-verify` must name exactly what was done.
describe('audit-verify against a tampered trail', () => {
  let db: TestPostgres;
  let work: string;
  let witness: string;
  let publicKeyFile: string;
  const keys = sealingKeys();
  let rowsBySeal: string[][];
  let copies = 0;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('base');
    const stderr = new StderrCapture();
    try {
      const app = await startSealingApp(db.url('base'), { integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem } });
      const audit = app.get(AuditService);
      for (let round = 0; round < 3; round++) {
        await Promise.all(
          Array.from({ length: 30 }, (_, i) => audit.log({ action: 'nda_created', entityId: `nda-${round}-${i}`, userId: 'alice' })),
        );
        await app.get(AuditSealer).sealNow();
      }
      await app.close();
      work = await mkdtemp(join(tmpdir(), 'audit-integrity-'));
      witness = join(work, 'witness.log');
      await writeFile(witness, witnessText(stderr));
      publicKeyFile = join(work, 'audit-seal.pub');
      await writeFile(publicKeyFile, keys.publicPem);
    } finally {
      stderr.restore();
    }
    const seals = await db.query<{ seq: string; n: number }>('SELECT seq::text, row_count AS n FROM audit_seal ORDER BY seq', [], 'base');
    expect(seals).toEqual([
      { seq: '1', n: 30 },
      { seq: '2', n: 30 },
      { seq: '3', n: 30 },
    ]);
    const rows = await db.query<{ id: string }>('SELECT id::text FROM audit_log ORDER BY tx, id', [], 'base');
    rowsBySeal = [rows.slice(0, 30), rows.slice(30, 60), rows.slice(60)].map((r) => r.map((row) => row.id));
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A fresh copy of the sealed trail, and a superuser's statements on it. */
  async function copy(): Promise<{ url: string; sql: (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]> }> {
    const name = `case${++copies}`;
    await db.query(`CREATE DATABASE ${name} TEMPLATE base`);
    return { url: db.url(name), sql: (text, params = []) => db.query(text, params, name) };
  }
  const unlocked = (table: string, statement: string) =>
    `ALTER TABLE ${table} DISABLE TRIGGER USER; ${statement}; ALTER TABLE ${table} ENABLE TRIGGER USER`;

  it('finds the untouched trail clean, against the witness and the signatures', async () => {
    const { url } = await copy();
    const result = await verify(url, '--witness', witness, '--public-key', publicKeyFile);
    expect(result.anomalies).toEqual([]);
    expect(result.out).toContain(
      'audit-verify: 90 rows verified, 3 seals verified, 0 rows not sealed yet, 0 anomalies, against a witness of 3 seals, signatures checked',
    );
    expect(result.code).toBe(0);
  });

  it('verifies as a role that may only read the two tables (it cannot maintain the index first)', async () => {
    const { sql } = await copy();
    const [{ name }] = await sql('SELECT current_database() AS name');
    await sql(`CREATE ROLE auditor_${String(name)} LOGIN PASSWORD 'auditor'`);
    await sql(`GRANT SELECT ON audit_log, audit_seal TO auditor_${String(name)}`);
    const result = await verify(db.url(String(name), `auditor_${String(name)}`, 'auditor'));
    expect(result.out).toContain('audit-verify: 90 rows verified, 3 seals verified, 0 rows not sealed yet, 0 anomalies');
    expect(result.code).toBe(0);
  });

  it('names a row one column of which was updated', async () => {
    const { url, sql } = await copy();
    const target = rowsBySeal[1][7];
    await sql(unlocked('audit_log', `UPDATE audit_log SET user_id = 'mallory' WHERE id = '${target}'`));
    const result = await verify(url);
    expect(result.anomalies).toEqual([`ANOMALY row_changed row ${target}`]);
    expect(result.code).toBe(1);
  });

  it('names a deleted row', async () => {
    const { url, sql } = await copy();
    const target = rowsBySeal[0][3];
    await sql(unlocked('audit_log', `DELETE FROM audit_log WHERE id = '${target}'`));
    const result = await verify(url);
    expect(result.anomalies).toEqual([`ANOMALY row_missing row ${target}`]);
    expect(result.code).toBe(1);
  });

  it('names a backdated row inserted into a sealed range, and one inserted without a transaction id', async () => {
    const { url, sql } = await copy();
    const [{ tx }] = await sql(`SELECT tx::text FROM audit_log WHERE id = '${rowsBySeal[1][0]}'`);
    const backdated = '01900000-0000-7000-8000-000000000001';
    const untracked = '01900000-0000-7000-8000-000000000002';
    // Only with the triggers off: the database sets tx itself otherwise.
    await sql(
      unlocked(
        'audit_log',
        `INSERT INTO audit_log (id, occurred_at, action, outcome, tx) VALUES ('${backdated}', '2025-01-01', 'nda_deleted', 'success', ${String(tx)})`,
      ),
    );
    await sql(
      unlocked(
        'audit_log',
        `INSERT INTO audit_log (id, occurred_at, action, outcome, tx) VALUES ('${untracked}', '2025-01-01', 'nda_deleted', 'success', NULL)`,
      ),
    );
    const result = await verify(url);
    expect(result.anomalies.sort()).toEqual([`ANOMALY row_forged row ${backdated}`, `ANOMALY row_forged row ${untracked}`].sort());
    expect(result.code).toBe(1);
  });

  it('names the newest seal when it was deleted with its rows, against the witness (without it, nothing shows)', async () => {
    const { url, sql } = await copy();
    await sql(unlocked('audit_log', `DELETE FROM audit_log WHERE id IN (${rowsBySeal[2].map((id) => `'${id}'`).join(', ')})`));
    await sql(unlocked('audit_seal', 'DELETE FROM audit_seal WHERE seq = 3'));
    expect((await verify(url)).code).toBe(0);
    const result = await verify(url, '--witness', witness);
    expect(result.anomalies).toEqual(['ANOMALY seal_missing seal 3']);
    expect(result.code).toBe(1);
  });

  it('names a truncation after --to against the witness: --from and --to never narrow the chain', async () => {
    const { url, sql } = await copy();
    const sealedAt = (await sql('SELECT sealed_at FROM audit_seal ORDER BY seq')).map((row) => (row.sealed_at as Date).toISOString());
    await sql(
      unlocked(
        'audit_log',
        `DELETE FROM audit_log WHERE id IN (${[...rowsBySeal[1], ...rowsBySeal[2]].map((id) => `'${id}'`).join(', ')})`,
      ),
    );
    await sql(unlocked('audit_seal', 'DELETE FROM audit_seal WHERE seq >= 2'));
    for (const range of [
      ['--to', sealedAt[0]],
      ['--from', sealedAt[0], '--to', sealedAt[0]],
      ['--from', sealedAt[2]],
    ]) {
      const result = await verify(url, '--witness', witness, ...range);
      expect(result.anomalies).toEqual(['ANOMALY seal_missing seal 2', 'ANOMALY seal_missing seal 3']);
      expect(result.code).toBe(1);
    }
  });

  it('names a changed seal', async () => {
    const { url, sql } = await copy();
    await sql(unlocked('audit_seal', 'UPDATE audit_seal SET row_count = 29 WHERE seq = 2'));
    const result = await verify(url);
    expect(result.anomalies).toEqual(['ANOMALY seal_changed seal 2']);
    expect(result.code).toBe(1);
  });

  /**
   * The forger's rewrite of seal `seq` after changing `row`: the row's manifest prefix becomes its
   * new leaf hash, `reorder` may move manifest entries, and the seal's hash is computed again; the
   * Merkle root is left as it was.
   */
  async function rewriteSeal(sql: (text: string) => Promise<Record<string, unknown>[]>, seq: number, row: string, reorder = false) {
    const [{ leaf }] = await sql(`SELECT ${LEAF_SQL} AS leaf FROM audit_log AS l, ${LEAF_FIELDS} WHERE l.id = '${row}'`);
    const [stored] = await sql(`SELECT ${SEAL_COLUMNS_SQL} FROM audit_seal AS s WHERE s.seq = ${seq}`);
    const seal = toSeal(stored);
    const manifest = Buffer.from(seal.manifest);
    (leaf as Buffer).copy(manifest, readManifest(manifest).get(row) as number, 0, 8);
    if (reorder) {
      const first = Buffer.from(manifest.subarray(0, MANIFEST_ENTRY_BYTES));
      manifest.copy(manifest, 0, MANIFEST_ENTRY_BYTES, 2 * MANIFEST_ENTRY_BYTES);
      first.copy(manifest, MANIFEST_ENTRY_BYTES);
    }
    const hash = sealHash({ ...seal, manifest });
    const hex = (bytes: Buffer) => `'\\x${bytes.toString('hex')}'::bytea`;
    await sql(unlocked('audit_seal', `UPDATE audit_seal SET manifest = ${hex(manifest)}, hash = ${hex(hash)} WHERE seq = ${seq}`));
  }

  it('names a seal whose manifest and hash were rewritten to agree with a changed row, its Merkle root left as it was', async () => {
    const { url, sql } = await copy();
    const target = rowsBySeal[2][7];
    await sql(unlocked('audit_log', `UPDATE audit_log SET user_id = 'mallory' WHERE id = '${target}'`));
    await rewriteSeal(sql, 3, target);
    const result = await verify(url);
    expect(result.anomalies).toEqual(['ANOMALY seal_changed seal 3']);
    expect(result.out).toContain('ANOMALY seal_changed seal 3: its Merkle root does not match its rows');
    expect(result.code).toBe(1);
  });

  it('names such a seal when its manifest entries were also reordered, so that the rows are checked against the manifest one by one', async () => {
    const { url, sql } = await copy();
    const target = rowsBySeal[2][7];
    await sql(unlocked('audit_log', `UPDATE audit_log SET user_id = 'mallory' WHERE id = '${target}'`));
    await rewriteSeal(sql, 3, target, true);
    const result = await verify(url);
    expect(result.anomalies).toEqual(['ANOMALY seal_changed seal 3']);
    expect(result.out).toContain('ANOMALY seal_changed seal 3: its Merkle root does not match its rows');
    expect(result.code).toBe(1);
  });

  it('names a seal whose signature is another seal’s, under the right key id, and a seal whose signature was removed', async () => {
    const { url, sql } = await copy();
    await sql(unlocked('audit_seal', 'UPDATE audit_seal SET signature = (SELECT signature FROM audit_seal WHERE seq = 2) WHERE seq = 3'));
    await sql(unlocked('audit_seal', 'UPDATE audit_seal SET signature = NULL WHERE seq = 1'));
    const keyIds = await sql('SELECT DISTINCT key_id FROM audit_seal');
    expect(keyIds).toEqual([{ key_id: expect.stringMatching(/^[0-9a-f]{16}$/) }]);
    expect((await verify(url)).code).toBe(0);
    const result = await verify(url, '--public-key', publicKeyFile);
    expect(result.out.filter((line) => line.startsWith('ANOMALY'))).toEqual([
      'ANOMALY seal_signature_invalid seal 1: it is not signed',
      'ANOMALY seal_signature_invalid seal 3: the signature does not verify',
    ]);
    expect(result.code).toBe(1);
  });

  it('checks only the rows of the seals made between --from and --to, and the chain whole', async () => {
    const { url, sql } = await copy();
    const sealedAt = (await sql('SELECT sealed_at FROM audit_seal ORDER BY seq')).map((row) => (row.sealed_at as Date).toISOString());
    const [first, last] = [rowsBySeal[0][5], rowsBySeal[2][5]];
    await sql(unlocked('audit_log', `UPDATE audit_log SET user_id = 'mallory' WHERE id IN ('${first}', '${last}')`));
    await sql(unlocked('audit_seal', 'UPDATE audit_seal SET row_count = 29 WHERE seq = 1'));
    const second = await verify(url, '--from', sealedAt[1], '--to', sealedAt[1]);
    expect(second.anomalies).toEqual(['ANOMALY seal_changed seal 1']);
    expect(second.out).toContain('audit-verify: 30 rows verified, 1 seals verified, 0 rows not sealed yet, 1 anomalies');
    const third = await verify(url, '--from', sealedAt[2]);
    expect(third.anomalies).toEqual(['ANOMALY seal_changed seal 1', `ANOMALY row_changed row ${last}`]);
    expect(third.code).toBe(1);
    const bad = await verify(url, '--from', 'yesterday');
    expect(bad.code).toBe(2);
    expect(bad.out[0].split('\n')[0]).toBe('--from must be a time such as 2026-11-28T00:00:00Z, got "yesterday"');
  });

  it('reports the same findings, in seal order, when each seal is read by a query of its own on several connections', async () => {
    const { url, sql } = await copy();
    const changed = [rowsBySeal[2][1], rowsBySeal[0][2]];
    await sql(unlocked('audit_log', `UPDATE audit_log SET outcome = 'failure' WHERE id IN ('${changed.join("', '")}')`));
    const client = new Client({ connectionString: url });
    await client.connect();
    const workers: Client[] = [];
    const connect = async () => {
      const worker = new Client({ connectionString: url });
      await worker.connect();
      workers.push(worker);
      return worker;
    };
    try {
      const whole = await verifyTrail(client);
      const bySeal = await verifyTrail(client, { chunkRows: 30, jobs: 2, connect });
      expect(bySeal).toEqual(whole);
      expect(bySeal.anomalies.map((a) => a.row)).toEqual([changed[1], changed[0]]);
      expect(bySeal).toMatchObject({ rowsVerified: 90, sealsVerified: 3, anomalyCount: 2 });
      expect(workers).toHaveLength(2);
    } finally {
      await client.end();
    }
  });

  it('names the seals of a consistent re-chaining inside the database, against the witness and against the signatures', async () => {
    const { url, sql } = await copy();
    const target = rowsBySeal[1][12];
    // The forger changes a row, drops every seal and seals again, with a key of their own (the
    // module's sealOnce continues no seal signed by another key, so the forger starts from none).
    await sql(unlocked('audit_log', `UPDATE audit_log SET action = 'nda_viewed' WHERE id = '${target}'`));
    await sql(unlocked('audit_seal', 'DELETE FROM audit_seal'));
    const forgersKey = createPrivateKey(sealingKeys().privatePem);
    const forger = new DataSource({ type: 'postgres', url, entities: [AuditLog] });
    await forger.initialize();
    const runner = forger.createQueryRunner();
    try {
      for (let i = 0; i < 3; i++) await sealOnce(runner, 'audit_log', { maxRows: 30, signingKey: forgersKey });
    } finally {
      await runner.release();
      await forger.destroy();
    }
    expect((await verify(url)).code).toBe(0);
    const againstWitness = await verify(url, '--witness', witness);
    expect(againstWitness.anomalies).toEqual([1, 2, 3].map((seq) => `ANOMALY seal_witness_mismatch seal ${seq}`));
    expect(againstWitness.code).toBe(1);
    const againstKey = await verify(url, '--public-key', publicKeyFile);
    expect(againstKey.anomalies).toEqual([1, 2, 3].map((seq) => `ANOMALY seal_signature_invalid seal ${seq}`));
    expect(againstKey.code).toBe(1);
  });
});
