import { type INestApplication } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_EVENTS, AuditSealer, AuditService, DbHealthIndicator } from '../src/audit';
import { AuditEntryNormalizer } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { eventually } from './support/app';
import { startSealingApp, sealingKeys, verify, witnessText } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// Everything the module already does, with sealing on, ends in a trail audit-verify finds clean:
// two instances writing at once, record() committed and rolled back, a transaction held open
// across seals, an outage (the server killed and restarted, its entries flushed late), and a
// replay of old entries. Sealing failures meanwhile show as lines, Sentry warnings and health.
describe('a trail sealed through everything the module does', () => {
  let db: TestPostgres;
  let ingest: SentryIngest;
  let stderr: StderrCapture;
  let apps: INestApplication[] = [];
  let work: string;
  const keys = sealingKeys();
  const normalizer = new AuditEntryNormalizer([], 64 * 1024);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('audit');
    ingest = await SentryIngest.start();
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    work = await mkdtemp(join(tmpdir(), 'audit-integrity-'));
    stderr = new StderrCapture();
    const options = {
      writeTimeoutMs: 500,
      retryBackoffMs: 50,
      retryBackoffMaxMs: 200,
      integrity: { intervalMs: 100, signingKey: keys.privatePem },
    };
    apps = [await startSealingApp(db.url('audit'), options), await startSealingApp(db.url('audit'), options)];
  }, 60_000);

  afterAll(async () => {
    for (const app of apps) await app.close();
    stderr?.restore();
    await Sentry.close(2000);
    await ingest?.stop();
    await db?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const count = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log', [], 'audit'))[0].n;
  const logMany = (app: INestApplication, prefix: string, n: number) =>
    Promise.all(
      Array.from({ length: n }, (_, i) => app.get(AuditService).log({ action: 'nda_created', entityId: `${prefix}-${i}`, userId: 'u1' })),
    );

  it('chains seals past seq 9 in numeric order (a trail of 12 small seals verifies clean)', async () => {
    await db.createDatabase('many');
    const app = await startSealingApp(db.url('many'), { integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem } });
    try {
      for (let round = 0; round < 12; round++) {
        await logMany(app, `many-${round}`, 3);
        await app.get(AuditSealer).sealNow();
      }
    } finally {
      await app.close();
    }
    const seals = await db.query<{ seq: number }>('SELECT seq::int FROM audit_seal AS s ORDER BY s.seq', [], 'many');
    expect(seals.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const result = await verify(db.url('many'));
    expect(result.out).toContain('audit-verify: 36 rows verified, 12 seals verified, 0 rows not sealed yet, 0 anomalies');
    expect(result.code).toBe(0);
  }, 30_000);

  it('verifies clean, every row sealed, after all of it', async () => {
    await Promise.all([logMany(apps[0], 'a', 150), logMany(apps[1], 'b', 150)]);

    const dataSource = apps[0].get(DataSource);
    await dataSource.transaction((manager) => apps[0].get(AuditService).record({ action: 'nda_signed', entityId: 'kept' }, { manager }));
    await expect(
      dataSource.transaction(async (manager) => {
        await apps[0].get(AuditService).record({ action: 'nda_signed', entityId: 'rolled-back' }, { manager });
        throw new Error('the caller gives up');
      }),
    ).rejects.toThrow('the caller gives up');

    // A transaction held open while later rows commit and seals are made.
    const held = new Client({ connectionString: db.url('audit') });
    await held.connect();
    await held.query('BEGIN');
    const late = normalizer.normalize({ action: 'nda_signed', entityId: 'held-open' }).record;
    const { sql, parameters } = buildAuditInsert('audit_log', [late]);
    await held.query(sql, parameters);
    await logMany(apps[1], 'c', 50);
    await apps[1].get(AuditSealer).sealNow();
    await held.query('COMMIT');
    await held.end();

    // An outage: the server killed, entries buffered, flushed after the restart; sealing fails meanwhile.
    await db.kill();
    await logMany(apps[0], 'outage', 40);
    await eventually(() => stderr.of(AUDIT_EVENTS.sealFailed).length >= 2, 10_000, 'sealing failures');
    const sick = apps[0].get(DbHealthIndicator).isHealthy().audit_db as unknown as { integrity: { failures: number } };
    expect(sick.integrity.failures).toBeGreaterThan(0);
    await db.restart();
    await eventually(async () => (await count()) === 392, 15_000, 'the outage flushed');

    // audit:replay of entries from long ago, after the seals that followed them were made.
    const replayed = [1, 2, 3].map(
      (i) => normalizer.normalize({ action: 'nda_created', entityId: `replayed-${i}`, occurredAt: new Date('2026-01-01') }).record,
    );
    const insert = buildAuditInsert('audit_log', replayed);
    await db.query(insert.sql, insert.parameters, 'audit');

    await eventually(
      async () => (await verify(db.url('audit'))).out.some((line) => line.includes(' 0 rows not sealed yet')),
      20_000,
      'everything sealed',
    );
    for (const app of apps) {
      await eventually(
        () => (app.get(DbHealthIndicator).isHealthy().audit_db as unknown as { integrity: { failures: number } }).integrity.failures === 0,
        20_000,
        'sealing recovered',
      );
    }
    const witness = join(work, 'witness.log');
    await writeFile(witness, witnessText(stderr));
    const publicKey = join(work, 'seal.pub');
    await writeFile(publicKey, keys.publicPem);
    const result = await verify(db.url('audit'), '--witness', witness, '--public-key', publicKey);
    expect(result.anomalies).toEqual([]);
    expect(result.out.find((line) => line.startsWith('audit-verify:'))).toMatch(
      /^audit-verify: 395 rows verified, \d+ seals verified, 0 rows not sealed yet, 0 anomalies/,
    );
    expect(result.code).toBe(0);
    expect(await db.query('SELECT count(*)::int AS n FROM audit_log WHERE entity_id = $1', ['rolled-back'], 'audit')).toEqual([{ n: 0 }]);

    await Sentry.flush(2000);
    const warnings = ingest.events.filter((event) => event.fingerprint?.[0] === 'audit-sealing-failed');
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatchObject({ level: 'warning' });
    expect(JSON.stringify(ingest.rawBodies)).not.toContain(db.password);
  }, 90_000);
});
