import { spawnSync } from 'node:child_process';
import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AUDIT_EVENTS, CreateAuditLog1732700000000, FileSpool } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { AuditQuarantine, isolateRefused } from '../src/audit/quarantine';
import { ConsoleSink, formatEventLine, type AuditReporter } from '../src/audit/sinks';
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

  it('re-inserts a quarantine file once the cause is fixed, naming each entry the database still refuses', async () => {
    // The cause: a constraint an operator added by mistake refuses some entries for their content.
    await db.query(`ALTER TABLE audit_log ADD CONSTRAINT no_blocked CHECK (entity_id NOT LIKE 'blocked-%')`, [], 'audit');
    const records = [record(30), { ...record(31), entityId: 'blocked-31' }, { ...record(32), entityId: 'blocked-32' }];
    const farFuture = { ...record(33), entityId: 'blocked-33', occurredAt: '+200000-01-01T00:00:00.000Z' };
    records.push(farFuture);
    const client = await db.connect('audit');
    const { refused } = await isolateRefused(records, async (batch) => {
      const { sql, parameters } = buildAuditInsert('"audit_log"', batch);
      await client.query(sql, parameters);
    }).finally(() => client.end());
    expect(refused.map((r) => (r.error as { code: string }).code)).toEqual(['23514', '23514', '22009']);
    const reporter: AuditReporter = { writeFailed: () => {}, recovered: () => {}, entriesDropped: () => {}, entriesQuarantined: () => {} };
    const spoolDir = join(work, 'quarantined-spool');
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    await new AuditQuarantine(spoolDir, new ConsoleSink(), reporter).put(refused).finally(() => stderr.mockRestore());
    await db.query('ALTER TABLE audit_log DROP CONSTRAINT no_blocked', [], 'audit');

    const first = replay(join(spoolDir, 'quarantine'));
    expect(first.out).toBe('replay: 2 inserted, 0 already present, 1 rejected, 0 other lines skipped');
    expect(first.err).toBe(
      `rejected ${farFuture.id} by the database (22009: time zone displacement out of range: "+200000-01-01T00:00:00.000Z")`,
    );
    expect(first.code).toBe(1);
    const second = replay(join(spoolDir, 'quarantine'));
    expect(second).toMatchObject({ code: 1, out: 'replay: 0 inserted, 2 already present, 1 rejected, 0 other lines skipped' });
    expect((await entityIds()).filter((id) => /-3\d$/.test(id))).toEqual(['blocked-31', 'blocked-32', 'replayed-30']);
  });

  it('replays audit.quarantined lines of a CloudWatch export', async () => {
    const quarantined = record(40);
    const line = formatEventLine(AUDIT_EVENTS.quarantined, 'error', {
      auditId: quarantined.id,
      error: { code: '23514' },
      entry: quarantined,
    });
    const file = join(work, 'quarantined.log');
    await writeFile(file, `2026-11-27T10:00:00.000Z ${line}\n`);
    expect(replay(file)).toMatchObject({ code: 0, out: 'replay: 1 inserted, 0 already present, 0 rejected, 0 other lines skipped' });
    expect(await entityIds()).toContain('replayed-40');
  });

  it('restores a 60 KiB entry written to stderr in numbered parts, each line within 16 KiB, from raw and exported lines', async () => {
    const unit = 'Grüße "quoted" \\ back\nslash 👩‍👩‍👧 ';
    const big = new AuditEntryNormalizer([], 64 * 1024).normalize({
      action: 'nda_created',
      entityType: 'NDA',
      entityId: 'replayed-50',
      userId: 'u1',
      changes: { text: unit.repeat(1170) },
    }).record;
    expect(Buffer.byteLength(JSON.stringify(big))).toBeGreaterThan(60 * 1024);
    const lines: string[] = [];
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
      lines.push(String(chunk).replace(/\n$/, ''));
      return true;
    });
    try {
      new ConsoleSink().emit(AUDIT_EVENTS.buffered, 'warn', { auditId: big.id, action: big.action, entry: big });
    } finally {
      stderr.mockRestore();
    }
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      expect(Buffer.byteLength(`${line}\n`)).toBeLessThanOrEqual(16 * 1024);
      expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
    // CloudWatch's order is not guaranteed: the export has the parts reversed, and the one-line events too.
    const s3Export = join(work, 'parts.log');
    await writeFile(
      s3Export,
      [...lines]
        .reverse()
        .map((line) => `2026-11-27T10:00:00.000Z ${line}`)
        .join('\n') + '\n',
    );
    const first = replay(s3Export);
    expect(first).toMatchObject({ code: 0, out: 'replay: 1 inserted, 0 already present, 0 rejected, 0 other lines skipped' });
    const [row] = await db.query<{ id: string; changes: unknown }>(
      `SELECT id, changes FROM audit_log WHERE entity_id = 'replayed-50'`,
      [],
      'audit',
    );
    expect(row).toEqual({ id: big.id, changes: big.changes });

    const filterEvents = join(work, 'parts-filter-log-events.json');
    await writeFile(filterEvents, JSON.stringify({ events: lines.map((message, i) => ({ timestamp: i, message })) }));
    expect(replay(filterEvents)).toMatchObject({
      code: 0,
      out: 'replay: 0 inserted, 1 already present, 0 rejected, 0 other lines skipped',
    });

    const partial = join(work, 'parts-partial.log');
    await writeFile(partial, lines.slice(0, -1).join('\n') + '\n');
    const incomplete = replay(partial);
    expect(incomplete).toMatchObject({ code: 1, out: 'replay: 0 inserted, 0 already present, 1 rejected, 0 other lines skipped' });
    expect(incomplete.err).toMatch(/rejected .*parts-partial\.log:1 \(missing_parts\)/);
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
