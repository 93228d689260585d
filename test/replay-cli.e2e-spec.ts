import { spawnSync } from 'node:child_process';
import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AUDIT_EVENTS, CreateAuditLog1732700000000, FileSpool } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { formatEventLine } from '../src/audit/sinks';
import { type Build, buildProject } from './support/build';
import { TestPostgres } from './support/postgres';

// `npm run audit:replay` as an operator runs it: the built CLI, on a spool directory and on
// CloudWatch exports, against a real audit database.
describe('audit:replay', () => {
  let build: Build;
  let db: TestPostgres;
  let work: string;
  const normalizer = new AuditEntryNormalizer(['password'], 64 * 1024);
  const record = (n: number): AuditRecord =>
    normalizer.normalize({ action: 'nda_created', entityType: 'NDA', entityId: `replayed-${n}`, userId: 'u1' }).record;

  const replay = (...paths: string[]) => {
    const run = spawnSync(process.execPath, [join(build.dir, 'src/audit/replay/replay.cli.js'), ...paths], {
      env: { ...build.env, AUDIT_DATABASE_URL: db.url('audit'), DATABASE_URL: '' },
      encoding: 'utf8',
    });
    return { code: run.status, out: run.stdout.trim(), err: run.stderr.trim() };
  };
  const entityIds = async () =>
    (await db.query<{ entity_id: string }>('SELECT entity_id FROM audit_log ORDER BY entity_id', [], 'audit')).map((r) => r.entity_id);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('audit');
    const migrator = new DataSource({ type: 'postgres', url: db.url('audit'), migrations: [CreateAuditLog1732700000000] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    build = buildProject();
    work = await mkdtemp(join(tmpdir(), 'audit-replay-'));
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    if (build) await rm(build.dir, { recursive: true, force: true });
  });

  it('inserts the entries of a spool directory once, reporting a damaged line, and inserts nothing the second time', async () => {
    const dir = join(work, 'spool');
    const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 1024 * 1024 });
    await spool.append([1, 2, 3, 4].map(record));
    await spool.close();
    const [segment] = await readdir(dir);
    await appendFile(join(dir, segment), '{"sum":"00","entry":{"id":"torn');

    const first = replay(dir);
    expect(first.out).toBe('replay: 4 inserted, 0 already present, 1 rejected, 0 other lines skipped');
    expect(first.err).toMatch(/rejected .*:5 \(torn_line\)/);
    expect(first.code).toBe(1);
    const second = replay(dir);
    expect(second.out).toBe('replay: 0 inserted, 4 already present, 1 rejected, 0 other lines skipped');
    expect(await entityIds()).toEqual(['replayed-1', 'replayed-2', 'replayed-3', 'replayed-4']);
  });

  it('reads the audit.buffered lines of CloudWatch exports, skipping other lines, exit 0 when nothing is rejected', async () => {
    const records = new Map([10, 11, 12].map((n) => [n, record(n)]));
    const line = (n: number) => formatEventLine(AUDIT_EVENTS.buffered, 'warn', { auditId: records.get(n)!.id, entry: records.get(n) });
    const s3Export = join(work, 'export.log');
    await writeFile(
      s3Export,
      [
        `2026-11-27T10:00:00.000Z ${line(10)}`,
        `2026-11-27T10:00:00.100Z ${formatEventLine(AUDIT_EVENTS.dbWriteFailed, 'error', { action: 'nda_created' })}`,
        '[Nest] 42  - 11/27/2026, 10:00:01 AM     LOG [NestApplication] Nest application successfully started',
        `2026-11-27T10:00:00.200Z ${line(11)}`,
      ].join('\n') + '\n',
    );
    const filterEvents = join(work, 'filter-log-events.json');
    await writeFile(
      filterEvents,
      JSON.stringify(
        {
          events: [
            { timestamp: 1, message: line(12) },
            { timestamp: 2, message: line(10) },
          ],
        },
        null,
        2,
      ),
    );

    const first = replay(s3Export, filterEvents);
    expect(first).toMatchObject({ code: 0, out: 'replay: 3 inserted, 1 already present, 0 rejected, 2 other lines skipped' });
    const second = replay(s3Export, filterEvents);
    expect(second).toMatchObject({ code: 0, out: 'replay: 0 inserted, 4 already present, 0 rejected, 2 other lines skipped' });
    expect((await entityIds()).filter((id) => /replayed-1\d/.test(id))).toEqual(['replayed-10', 'replayed-11', 'replayed-12']);
  });

  it('refuses to run without a database or without paths', () => {
    const run = spawnSync(process.execPath, [join(build.dir, 'src/audit/replay/replay.cli.js')], {
      env: { ...build.env, AUDIT_DATABASE_URL: '', DATABASE_URL: '' },
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^usage: npm run audit:replay/);
  });
});
