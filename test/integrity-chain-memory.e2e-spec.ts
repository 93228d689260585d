import { type INestApplication } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_EVENTS, AuditSealer, AuditService, DbHealthIndicator } from '../src/audit';
import { eventually } from './support/app';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// A superuser rewrites a sealed row and deletes the seals from there on (or all of them). The
// app's sealer must not re-seal the rewritten rows with the genuine key: it remembers the newest
// seal it made or saw, in memory and (with a spool directory) across restarts.
describe('the sealer remembers its chain', () => {
  let db: TestPostgres;
  let ingest: SentryIngest;
  let stderr: StderrCapture;
  let work: string;
  let databases = 0;
  let publicKeyFile: string;
  const keys = sealingKeys();
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    db = await TestPostgres.start();
    ingest = await SentryIngest.start();
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    work = await mkdtemp(join(tmpdir(), 'audit-chain-'));
    publicKeyFile = join(work, 'audit-seal.pub');
    await writeFile(publicKeyFile, keys.publicPem);
    stderr = new StderrCapture();
  }, 60_000);

  afterAll(async () => {
    for (const app of apps) await app.close();
    stderr?.restore();
    await Sentry.close(2000);
    await ingest?.stop();
    await db?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function database(): Promise<{ url: string; sql: (text: string) => Promise<Record<string, unknown>[]> }> {
    const name = `chain${++databases}`;
    await db.createDatabase(name);
    return { url: db.url(name), sql: (text) => db.query(text, [], name) };
  }
  async function start(url: string, spoolDir?: string): Promise<INestApplication> {
    const app = await startSealingApp(url, { spoolDir, integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem } });
    apps.push(app);
    return app;
  }
  async function stop(app: INestApplication): Promise<void> {
    apps.splice(apps.indexOf(app), 1);
    await app.close();
  }
  /** Logs `n` entries and seals them: one seal. */
  async function sealRound(app: INestApplication, prefix: string, n = 10): Promise<void> {
    await Promise.all(
      Array.from({ length: n }, (_, i) => app.get(AuditService).log({ action: 'nda_created', entityId: `${prefix}-${i}` })),
    );
    await app.get(AuditSealer).sealNow();
  }
  const seals = async (sql: (text: string) => Promise<Record<string, unknown>[]>) =>
    (await sql('SELECT seq::int FROM audit_seal ORDER BY seq')).map((row) => row.seq);
  /** The superuser's attack: a row of seal `from` rewritten, the seals from `from` on deleted. */
  async function cut(sql: (text: string) => Promise<Record<string, unknown>[]>, from: number): Promise<void> {
    const [{ last_tx, last_id }] = await sql(`SELECT last_tx::text, last_id::text FROM audit_seal WHERE seq = ${from}`);
    await sql(
      `ALTER TABLE audit_log DISABLE TRIGGER USER; UPDATE audit_log SET action = 'nda_viewed' WHERE tx = ${String(last_tx)} AND id = '${String(last_id)}'; ALTER TABLE audit_log ENABLE TRIGGER USER`,
    );
    await sql(
      `ALTER TABLE audit_seal DISABLE TRIGGER USER; DELETE FROM audit_seal WHERE seq >= ${from}; ALTER TABLE audit_seal ENABLE TRIGGER USER`,
    );
  }
  const brokenLines = (trail: string) => stderr.of(AUDIT_EVENTS.chainBroken).filter((line) => line.trail === trail);

  it('in memory: seals nothing more once the seals after one it made are gone, and says so everywhere', async () => {
    const { url, sql } = await database();
    const trail = `chain${databases}/audit_log`;
    const app = await start(url);
    for (const round of ['a', 'b', 'c']) await sealRound(app, round);
    expect(await seals(sql)).toEqual([1, 2, 3]);
    await cut(sql, 2);
    await sealRound(app, 'd');
    await app.get(AuditSealer).sealNow();
    expect(await seals(sql)).toEqual([1]);
    expect(brokenLines(trail)).toEqual([
      expect.objectContaining({ level: 'error', event: 'audit.chain_broken', rememberedSeq: 3, foundSeq: 1 }),
    ]);
    expect(app.get(DbHealthIndicator).isHealthy().audit_db).toMatchObject({
      integrity: { chainBroken: expect.objectContaining({ rememberedSeq: 3, foundSeq: 1 }) },
    });
    await Sentry.flush(2000);
    const events = await eventually(
      () => {
        const found = ingest.events.filter((e) => e.message?.includes('chain') && e.contexts?.audit?.trail === trail);
        return found.length > 0 && found;
      },
      10_000,
      'the Sentry error',
    );
    expect(events).toEqual([expect.objectContaining({ level: 'error' })]);
    // The rewritten row is after the newest seal now: the genuine key never vouched for it.
    expect((await verify(url, '--public-key', publicKeyFile)).out).toContain('result: CLEAN');
    expect(await seals(sql)).toEqual([1]);
    await stop(app);
  });

  it('in memory: seals nothing more once every seal is gone', async () => {
    const { url, sql } = await database();
    const trail = `chain${databases}/audit_log`;
    const app = await start(url);
    for (const round of ['a', 'b']) await sealRound(app, round);
    await cut(sql, 1);
    await sealRound(app, 'c');
    expect(await seals(sql)).toEqual([]);
    expect(brokenLines(trail)).toEqual([expect.objectContaining({ rememberedSeq: 2, foundSeq: 0 })]);
    await stop(app);
  });

  it('in memory: seals nothing more once a seal it made was replaced by another of the same number', async () => {
    const { url, sql } = await database();
    const trail = `chain${databases}/audit_log`;
    const app = await start(url);
    for (const round of ['a', 'b']) await sealRound(app, round);
    await cut(sql, 2);
    // The forger seals again up to the same number, even with the genuine key (a sealer continues no
    // seal it cannot verify, nor does the database take an unsigned one): the memory catches it.
    const forger = await startSealingApp(url, { integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem } });
    try {
      await forger.get(AuditSealer).sealNow();
    } finally {
      await forger.close();
    }
    expect(await seals(sql)).toEqual([1, 2]);
    await sealRound(app, 'c');
    expect(await seals(sql)).toEqual([1, 2]);
    expect(brokenLines(trail)).toEqual([expect.objectContaining({ rememberedSeq: 2, foundSeq: 2 })]);
    await stop(app);
  });

  it('with a spool directory: remembers across a restart, in a 0600 file, until the operator removes it', async () => {
    const { url, sql } = await database();
    const trail = `chain${databases}/audit_log`;
    const spoolDir = await mkdtemp(join(work, 'spool-'));
    const first = await start(url, spoolDir);
    for (const round of ['a', 'b', 'c']) await sealRound(first, round);
    await stop(first);
    const [file] = await readdir(join(spoolDir, 'integrity'));
    expect((await stat(join(spoolDir, 'integrity', file))).mode & 0o777).toBe(0o600);
    await cut(sql, 2);
    const second = await start(url, spoolDir);
    await sealRound(second, 'd');
    expect(await seals(sql)).toEqual([1]);
    expect(brokenLines(trail)).toEqual([expect.objectContaining({ rememberedSeq: 3, foundSeq: 1 })]);
    await stop(second);
    // The documented step after a legitimate restore: verify it, then remove the memory of the old chain.
    await rm(join(spoolDir, 'integrity', file));
    const third = await start(url, spoolDir);
    await third.get(AuditSealer).sealNow();
    expect(await seals(sql)).toEqual([1, 2]);
    await stop(third);
  });

  it('two instances sealing one trail, each with its own memory, never take the other for a forger', async () => {
    const { url, sql } = await database();
    const trail = `chain${databases}/audit_log`;
    const spoolDir = await mkdtemp(join(work, 'spool-'));
    const [a, b] = [await start(url, spoolDir), await start(url)];
    for (let round = 0; round < 3; round++) {
      await sealRound(a, `a${round}`);
      await sealRound(b, `b${round}`);
    }
    await stop(a);
    await sealRound(b, 'b-alone');
    const restarted = await start(url, spoolDir);
    await sealRound(restarted, 'a-again');
    expect(await seals(sql)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(brokenLines(trail)).toEqual([]);
    expect((await verify(url, '--public-key', publicKeyFile)).code).toBe(0);
    await stop(b);
    await stop(restarted);
  });
});
