import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { sealOnce } from '../../src/audit/integrity/seal-store';
import { verifyArchive } from '../../src/audit/lifecycle/archive-verifier';
import { writeArchive } from '../../src/audit/lifecycle/archive-writer';
import { freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';

/** The month archived: far enough back that it is a month of its own. */
const MONTH = '2026-01';

/**
 * Scenario: `sizes.rows` rows of one month (filled by SQL, with actor and payload values as the
 * module writes them), sealed 20 000 at a time with a signing key; then `audit-archive`'s writer
 * and `audit-verify --archive`'s offline check of the files, each timed. The figure is the
 * offline check's rows per second (hash, manifest, Merkle root, chain, signatures).
 *
 * @example
 * const figures = await archive(pg, { rows: 200_000 }, details);
 */
export async function archive(pg: TestPostgres, sizes: { rows: number }, details: Record<string, unknown>): Promise<Figure[]> {
  const url = await freshAuditDatabase(pg, 'archive');
  await pg.query(
    `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, request_id, changes, metadata)
     SELECT gen_random_uuid(), '${MONTH}-01T00:00:00Z'::timestamptz + make_interval(secs => i), 'nda_updated', 'Nda', 'nda-' || (i % 50000),
       'user-' || (i % 1000), 'success', '203.0.113.' || (i % 250), 'Mozilla/5.0 (bench)', 'req-' || i,
       '{"before": {"status": "draft"}, "after": {"status": "signed"}}', '{"route": "/ndas/:id", "status": 200}'
     FROM generate_series(1, $1::int) AS i`,
    [sizes.rows],
    'archive',
  );
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const source = new DataSource({ type: 'postgres', url, logging: false });
  await source.initialize();
  const sealStarted = performance.now();
  let seals = 0;
  try {
    const runner = source.createQueryRunner();
    try {
      for (;;) {
        const seal = await sealOnce(runner, 'audit_log', { maxRows: 20_000, signingKey: privateKey });
        if (seal === null || seal === 'busy' || !('seq' in seal)) break;
        seals += 1;
      }
    } finally {
      await runner.release();
    }
  } finally {
    await source.destroy();
  }
  const sealS = (performance.now() - sealStarted) / 1000;
  const out = mkdtempSync(join(tmpdir(), 'bench-archive-'));
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const writeStarted = performance.now();
    const written = await writeArchive(client, {
      table: 'public.audit_log',
      month: MONTH,
      out,
      trail: 'archive/audit_log',
      timeoutMs: 30_000,
    });
    const writeS = (performance.now() - writeStarted) / 1000;
    if (!written.written) throw new Error(`the bench month was refused: ${written.refused}`);
    const verifyStarted = performance.now();
    const cpuBefore = process.cpuUsage();
    const { report, archive: held } = await verifyArchive(written.sealsPath, { publicKey });
    const verifyS = (performance.now() - verifyStarted) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    // This process's CPU time (user + system): the rate the check reaches on a core of its own, whatever else runs.
    const verifyCpuS = (cpu.user + cpu.system) / 1e6;
    if (report.anomalyCount > 0 || held.damaged || report.rowsVerified !== sizes.rows) {
      throw new Error(`the bench archive did not verify clean: ${report.anomalyCount} anomalies, ${report.rowsVerified} rows`);
    }
    const bytes = statSync(written.rowsPath).size;
    details.archive = { ...sizes, seals, sealS, writeS, verifyS, verifyCpuS, rowsFileBytes: bytes, bytesPerRow: bytes / sizes.rows };
    return [
      {
        key: 'lifecycle.archiveVerifyRowsPerSec',
        value: Math.round(sizes.rows / verifyS),
        unit: 'rows/s',
        target: { op: '>=', value: 100_000 },
        note: `${sizes.rows} rows, ${seals} signed seals, in ${verifyS.toFixed(2)} s (${Math.round(sizes.rows / verifyCpuS)} rows per CPU second); written in ${writeS.toFixed(2)} s (${Math.round(bytes / sizes.rows)} B/row gzip)`,
      },
    ];
  } finally {
    await client.end();
    rmSync(out, { recursive: true, force: true });
  }
}
