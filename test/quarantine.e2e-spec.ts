import * as Sentry from '@sentry/nestjs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client } from 'pg';
import { DataSource } from 'typeorm';
import { CreateAuditLog1732700000000 } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { AuditQuarantine, isolateRefused } from '../src/audit/quarantine';
import { ConsoleSink, SentryReporter } from '../src/audit/sinks';
import { decodeSpoolLine } from '../src/audit/spool';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// Promise 9 against a real PostgreSQL and the real Sentry SDK: a batch holding records the
// database refuses (as an old spool segment or a CloudWatch export can carry them) commits every
// other record, and the refused ones land in the quarantine with a line and a Sentry warning.
describe('isolating and quarantining refused records', () => {
  let db: TestPostgres;
  let client: Client;
  let ingest: SentryIngest;
  let stderr: StderrCapture;
  let spoolDir: string;
  const normalizer = new AuditEntryNormalizer(['password'], 64 * 1024);
  const record = (n: number): AuditRecord =>
    normalizer.normalize({ action: 'nda_created', entityType: 'NDA', entityId: `e-${n}`, changes: { title: `private-${n}` } }).record;

  beforeAll(async () => {
    db = await TestPostgres.start();
    const migrator = new DataSource({ type: 'postgres', url: db.url(), migrations: [CreateAuditLog1732700000000] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    client = await db.connect();
    ingest = await SentryIngest.start();
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    spoolDir = await mkdtemp(join(tmpdir(), 'audit-quarantine-e2e-'));
    stderr = new StderrCapture();
  }, 60_000);

  afterAll(async () => {
    stderr?.restore();
    await Sentry.close(2000);
    await ingest?.stop();
    await client?.end();
    await db?.stop();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  });

  it('commits every healthy record of the batch exactly once and hands back each refused one with its error', async () => {
    const records = Array.from({ length: 50 }, (_, n) => record(n));
    records[17] = { ...records[17], occurredAt: '+200000-01-01T00:00:00.000Z' };
    records[33] = { ...records[33], changes: { note: 'nul \u0000 inside' } };
    let roundTrips = 0;
    const insert = async (batch: AuditRecord[]) => {
      roundTrips += 1;
      const { sql, parameters } = buildAuditInsert('"audit_log"', batch);
      await client.query(sql, parameters);
    };

    const { refused } = await isolateRefused(records, insert);

    expect(refused.map(({ record, error }) => [record.entityId, (error as { code: string }).code])).toEqual([
      ['e-17', '22009'],
      ['e-33', '22P05'],
    ]);
    const healthy = records.filter((_, n) => n !== 17 && n !== 33).map((r) => r.id);
    const rows = async () => (await db.query<{ id: string }>('SELECT id FROM audit_log ORDER BY id')).map((r) => r.id);
    expect(await rows()).toEqual([...healthy].sort());
    expect(roundTrips).toBeLessThanOrEqual(1 + 2 * 2 * Math.ceil(Math.log2(50)));

    // A retry of the same batch (after a crash, or by a second instance) adds nothing.
    const again = await isolateRefused(records, insert);
    expect(again.refused.map((r) => r.record.entityId)).toEqual(['e-17', 'e-33']);
    expect(await rows()).toEqual([...healthy].sort());

    stderr.clear();
    const quarantine = new AuditQuarantine(spoolDir, new ConsoleSink(), new SentryReporter(), [db.password]);
    const { file } = await quarantine.put(refused);

    const lines = (await readFile(file!, 'utf8')).trimEnd().split('\n');
    expect(lines.map(decodeSpoolLine)).toEqual([{ record: records[17] }, { record: records[33] }]);
    expect(await readdir(join(spoolDir, 'quarantine'))).toHaveLength(1);
    expect(stderr.of('audit.quarantined')).toEqual([
      expect.objectContaining({
        level: 'error',
        auditId: records[17].id,
        error: expect.objectContaining({ code: '22009' }),
        entry: records[17],
      }),
      expect.objectContaining({
        level: 'error',
        auditId: records[33].id,
        error: expect.objectContaining({ code: '22P05' }),
        entry: records[33],
      }),
    ]);

    await Sentry.flush(2000);
    const warnings = ingest.events.filter((event) => event.level === 'warning');
    expect(warnings).toEqual([
      expect.objectContaining({
        message: 'Audit entries quarantined: 2 refused by the database (22009)',
        fingerprint: ['audit-entries-quarantined'],
        tags: expect.objectContaining({ 'audit.action': 'nda_created', 'audit.entity_type': 'NDA', 'audit.error_code': '22009' }),
      }),
    ]);
    expect(warnings[0].contexts?.audit).toMatchObject({ count: 2, auditId: records[17].id, file });
    const sent = ingest.rawBodies.join('\n');
    expect(sent).not.toContain('private-');
    expect(sent).not.toContain('nul ');
  });
});
