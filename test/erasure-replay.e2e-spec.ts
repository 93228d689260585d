import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AUDIT_EVENTS, AUDIT_MIGRATIONS } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { runErase } from '../src/audit/privacy/erase-command';
import { personalSplitter } from '../src/audit/privacy/personal-values';
import { resolvePrivacyOptions } from '../src/audit/privacy/privacy-options';
import { formatEventLine } from '../src/audit/sinks';
import { type Build, buildProject } from './support/build';
import { TestPostgres } from './support/postgres';

const PSEUDONYM_KEY = 'a-pseudonym-key-of-at-least-32-characters';

// audit:replay of entries whose subject was erased after they were written holds them back
// instead of bringing the erased values back; entries of others go in as before. Without the
// pseudonym key it cannot tell whose they are, and holds back every one an erasure followed.
describe('audit:replay after an erasure', () => {
  let build: Build;
  let db: TestPostgres;
  let work: string;
  const normalizer = new AuditEntryNormalizer(
    [],
    64 * 1024,
    undefined,
    personalSplitter(resolvePrivacyOptions({ personalData: ['changes.email'] })),
  );
  const record = (userId: string, n: number): AuditRecord =>
    normalizer.normalize({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: `p-${n}`,
      userId,
      changes: { email: `${userId}@example.com` },
    }).record;

  const replay = (env: Record<string, string>, ...paths: string[]) => {
    const run = spawnSync(process.execPath, [join(build.dir, 'src/audit/replay/replay.cli.js'), ...paths], {
      env: { ...build.env, AUDIT_DATABASE_URL: db.url('audit'), DATABASE_URL: '', AUDIT_INTEGRITY_ENTRY_KEY: '', ...env },
      encoding: 'utf8',
    });
    return { code: run.status, out: run.stdout.trim(), err: run.stderr.trim() };
  };
  const users = async () =>
    await db.query<{ user_id: string; personal: string }>(
      `SELECT user_id, personal FROM audit_log WHERE action = 'profile_updated' ORDER BY entity_id`,
      [],
      'audit',
    );

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('audit');
    const migrator = new DataSource({ type: 'postgres', url: db.url('audit'), migrations: [...AUDIT_MIGRATIONS] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    build = buildProject();
    work = await mkdtemp(join(tmpdir(), 'audit-erasure-replay-'));
  }, 180_000);

  afterAll(async () => {
    await db?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    if (build) await rm(build.dir, { recursive: true, force: true });
  });

  it('holds back the entries of an erased subject, inserts the others, and names each one held back', async () => {
    const [stored, lost, other] = [record('u-9', 1), record('u-9', 2), record('u-8', 3)];
    const { sql, parameters } = buildAuditInsert('audit_log', [stored]);
    await db.query(sql, parameters, 'audit');
    const file = join(work, 'export.log');
    const line = (r: AuditRecord) => formatEventLine(AUDIT_EVENTS.buffered, 'warn', { auditId: r.id, entry: r });
    await writeFile(file, [stored, lost, other].map(line).join('\n') + '\n');
    const out: string[] = [];
    const erased = await runErase(
      ['--url', db.url('audit'), '--user', 'u-9'],
      { AUDIT_PRIVACY_PSEUDONYM_KEY: PSEUDONYM_KEY },
      {
        out: (l) => out.push(l),
        err: (l) => out.push(l),
      },
    );
    expect([erased, out.at(-1)]).toEqual([0, expect.stringMatching(/^audit-erase: 1 rows erased/)]);

    const keyless = replay({}, file);
    expect(keyless.code).toBe(1);
    expect(keyless.out).toBe(
      'replay: 0 inserted, 1 already present, 0 rejected, 2 held back (subject erased since), 0 other lines skipped',
    );

    const keyed = replay({ AUDIT_PRIVACY_PSEUDONYM_KEY: PSEUDONYM_KEY }, file);
    expect(keyed.out).toBe('replay: 1 inserted, 1 already present, 0 rejected, 1 held back (subject erased since), 0 other lines skipped');
    expect(keyed.err).toContain(`held back ${lost.id}: its subject was erased since it was written (erasure `);
    expect(keyed.code).toBe(1);
    const rows = await users();
    expect(rows.map((r) => r.user_id)).toEqual(['[ERASED]', 'u-8']);
    expect(JSON.stringify(rows)).not.toContain('u-9');
  }, 60_000);
});
