import { type INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditSealer } from '../../src/audit';
import { startSealingApp, type sealingKeys } from './integrity';
import { trailWithPastMonths } from './past-months';
import { TestPostgres } from './postgres';
import { StderrCapture } from './stderr';

/** What the archive suites share: a key directory, a PostgreSQL, a sealing app and its stderr. */
export interface ArchiveTrail {
  /** Holds `seal.key` (mode 0600) and `seal.pub`; the suites write their archives below it. */
  dir: string;
  db: TestPostgres;
  app: INestApplication;
  stderr: StderrCapture;
}

/**
 * Starts a trail whose monthly partitions begin `pastMonths` back, sealed by an app signing with
 * `keys` and authenticating entries with `entryKey` (`id:base64`, as `--entry-key` takes it),
 * privacy on with no personal paths, and one seal made before any row is logged.
 */
export async function startArchiveTrail(
  database: string,
  pastMonths: number,
  keys: ReturnType<typeof sealingKeys>,
  entryKey: string,
): Promise<ArchiveTrail> {
  const dir = mkdtempSync(join(tmpdir(), `audit-${database}-`));
  writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
  writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
  const db = await TestPostgres.start();
  await db.createDatabase(database);
  await trailWithPastMonths(db, database, pastMonths);
  const stderr = new StderrCapture();
  const [id, secret] = [entryKey.slice(0, entryKey.indexOf(':')), entryKey.slice(entryKey.indexOf(':') + 1)];
  const app = await startSealingApp(db.url(database), {
    privacy: { personalData: [] },
    integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem, entryKeys: [{ id, secret }] },
  });
  await app.get(AuditSealer).sealNow();
  return { dir, db, app, stderr };
}

/** Closes what {@link startArchiveTrail} started, whatever part of it did start. */
export async function stopArchiveTrail(trail: Partial<ArchiveTrail>): Promise<void> {
  await trail.app?.close();
  trail.stderr?.restore();
  await trail.db?.stop();
  if (trail.dir) rmSync(trail.dir, { recursive: true, force: true });
}
