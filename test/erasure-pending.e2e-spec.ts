import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, type AuditModuleOptions, AuditService } from '../src/audit';
import { runErase } from '../src/audit/privacy/erase-command';
import { eventually } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Entries still on their way when erase() runs: in this instance's writer batch (erase() writes
// them first, then erases them), and in the spool or the ring after an outage (the recovery that
// writes them later holds back those of a subject erased since: quarantined as subject_erased).
describe('erasure of entries still on their way', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let url: string;
  let work: string;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const entryKeys = [{ id: 'k1', secret: entryKey.slice(3) }];
  const writer = { user: 'audit_writer', password: 'writer-pw' };
  const privacy = { personalData: ['changes.body.email', 'metadata.ip'] };
  const options: AuditModuleOptions = { privacy, integrity: { intervalMs: 3_600_000, entryKeys } };

  const sql = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) => db.query<T>(text, params, 'audit');
  const eraseAsOwner = async (userId: string) => {
    const out: string[] = [];
    const code = await runErase(
      ['--url', db.url('audit'), '--user', userId, '--by', 'dpo'],
      { AUDIT_INTEGRITY_ENTRY_KEY: entryKey },
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    expect([code, out]).toEqual([0, expect.anything()]);
  };
  const quarantineFileLines = async (spoolDir: string) => {
    const dir = join(spoolDir, 'quarantine');
    const files = await readdir(dir);
    return (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).join('').split('\n').filter(Boolean);
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    url = await createAuditDatabase(db, 'audit', writer);
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO ${writer.user}`, [], 'audit');
    work = await mkdtemp(join(tmpdir(), 'audit-erasure-pending-'));
    app = await startErasureApp(url, options);
    await app
      .get(AuditService)
      .log({ action: 'profile_updated', entityType: 'Profile', entityId: 'p-1', userId: 'u-1', ip: '203.0.113.7' });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("erases an entry this instance logged just before erase(), still waiting in the writer's batch", async () => {
    const batching = await startErasureApp(url, { ...options, batchDelayMs: 1000 });
    try {
      const audit = batching.get(AuditService);
      void audit.log({ action: 'account_deleted', entityType: 'Account', entityId: 'a-3', userId: 'u-3', ip: '192.0.2.33' });
      const result = await audit.erase({ userId: 'u-3', requestedBy: 'dpo' });
      const rows = await sql<{ user_id: string; ip: string }>(`SELECT user_id, ip FROM audit_log WHERE entity_id = 'a-3'`);
      expect({ erased: result.erased, rows }).toEqual({ erased: 1, rows: [{ user_id: '[ERASED]', ip: '[ERASED]' }] });
    } finally {
      await batching.close();
    }
  }, 60_000);

  it('quarantines (subject_erased), never inserts, an entry of a user erased while it waited in the spool', async () => {
    const spoolDir = join(work, 'spool');
    const stderr = new StderrCapture();
    try {
      const sick = await sickApp(spoolDir);
      try {
        await sick.get(AuditService).log({
          action: 'profile_viewed',
          entityType: 'Profile',
          entityId: 'spooled-1',
          userId: 'u-1',
          ip: '203.0.113.7',
          changes: { body: { email: 'u-1@example.com' } },
        });
      } finally {
        await sick.close();
      }
      const erasure = await app.get(AuditService).erase({ userId: 'u-1', requestedBy: 'dpo' });
      expect(erasure.erased).toBe(1);
      stderr.clear();
      const drained = await startErasureApp(url, { ...options, spoolDir });
      try {
        const status = await eventually(() => {
          const s = drained.get(AuditService).status();
          return s.spooled === 0 && s.quarantined === 1 && s;
        });
        expect(status).toMatchObject({ state: 'up', spooled: 0, quarantined: 1 });
      } finally {
        await drained.close();
      }
      expect(await sql(`SELECT user_id FROM audit_log WHERE entity_id = 'spooled-1' OR user_id = 'u-1'`)).toEqual([]);
      const lines = stderr.of('audit.quarantined');
      expect(lines).toEqual([
        expect.objectContaining({
          entityId: 'spooled-1',
          error: { code: 'subject_erased', message: expect.stringContaining(`erasure ${erasure.erasureId}`) },
        }),
      ]);
      const file = await quarantineFileLines(spoolDir);
      expect(file).toEqual([expect.stringContaining('"subject_erased"')]);
    } finally {
      stderr.restore();
    }
  }, 90_000);

  it('quarantines (subject_erased), never inserts, an entry of a user erased while it waited in the ring', async () => {
    const spoolDir = join(work, 'ring');
    const ring = await startErasureApp(url, { ...options, spoolDir, retryBackoffMs: 200, retryBackoffMaxMs: 200 });
    const stderr = new StderrCapture();
    try {
      await sql(`REVOKE INSERT ON audit_log FROM ${writer.user}`);
      await ring
        .get(AuditService)
        .log({ action: 'profile_viewed', entityType: 'Profile', entityId: 'ring-1', userId: 'u-6', ip: '192.0.2.6' });
      await ring
        .get(AuditService)
        .log({ action: 'profile_viewed', entityType: 'Profile', entityId: 'ring-2', userId: 'u-7', ip: '192.0.2.7' });
      await eventually(() => ring.get(AuditService).status().buffered === 2);
      await eraseAsOwner('u-6');
      stderr.clear();
      await sql(`GRANT INSERT ON audit_log TO ${writer.user}`);
      await eventually(() => {
        const s = ring.get(AuditService).status();
        return s.state === 'up' && s.buffered === 0;
      });
      expect(ring.get(AuditService).status().quarantined).toBe(1);
      const rows = await sql<{ entity_id: string; user_id: string }>(
        `SELECT entity_id, user_id FROM audit_log WHERE entity_id IN ('ring-1', 'ring-2') ORDER BY entity_id`,
      );
      expect(rows).toEqual([{ entity_id: 'ring-2', user_id: 'u-7' }]);
      expect(stderr.of('audit.quarantined')).toEqual([
        expect.objectContaining({ entityId: 'ring-1', error: expect.objectContaining({ code: 'subject_erased' }) }),
      ]);
      expect(await quarantineFileLines(spoolDir)).toEqual([expect.stringContaining('"subject_erased"')]);
    } finally {
      stderr.restore();
      await sql(`GRANT INSERT ON audit_log TO ${writer.user}`);
      await ring.close();
    }
  }, 90_000);

  async function sickApp(spoolDir: string): Promise<INestApplication> {
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: 'postgres://postgres:none@127.0.0.1:1/none',
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          manualInitialization: true,
        }),
        AuditModule.forRoot({
          auditHttp: false,
          mode: 'sync',
          spoolDir,
          writeTimeoutMs: 500,
          retryBackoffMs: 3_600_000,
          retryBackoffMaxMs: 3_600_000,
          privacy,
          integrity: { enabled: true, intervalMs: 3_600_000, entryKeys },
        }),
      ],
    })
    class SickModule {}
    const moduleRef = await Test.createTestingModule({ imports: [SickModule] }).compile();
    const sick = moduleRef.createNestApplication({ logger: false });
    await sick.init();
    return sick;
  }
});
