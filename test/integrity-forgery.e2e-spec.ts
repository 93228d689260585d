import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import * as Sentry from '@sentry/nestjs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AUDIT_EVENTS, AUDIT_MIGRATIONS, AuditLog, AuditModule, type AuditModuleOptions, AuditSealer, AuditService } from '../src/audit';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { DbHealthIndicator } from '../src/audit/audit-db.health';
import { readReplaySource } from '../src/audit/replay/replay-source';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// Rows that did not pass through the module, written by whoever holds the database's credentials:
// the sealer must never seal them, and `audit-verify` with the entry key must name each one.
// Rows that did pass through it, however late they reach the table, must verify clean.
describe('entries authenticated at birth', () => {
  let db: TestPostgres;
  let work: string;
  let ingest: SentryIngest;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const entryKeys = [{ id: 'k1', secret: entryKey.slice(3) }];
  let copies = 0;

  beforeAll(async () => {
    ingest = await SentryIngest.start();
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    db = await TestPostgres.start();
    await db.createDatabase('base');
    work = await mkdtemp(join(tmpdir(), 'audit-forgery-'));
    // Rows written, and sealed, before entry authentication was turned on.
    const before = await startSealingApp(db.url('base'), { integrity: { intervalMs: 3_600_000 } });
    try {
      await logMany(before, 'legacy', 3);
      await before.get(AuditSealer).sealNow();
    } finally {
      await before.close();
    }
    const app = await keyedApp(db.url('base'));
    try {
      await logMany(app, 'nda', 10);
      // record() rows, written in the caller's transaction.
      const dataSource = app.get(DataSource);
      await dataSource.transaction(async (manager) => {
        await app.get(AuditService).record({ action: 'nda_signed', entityType: 'NDA', entityId: 'atomic-1', userId: 'bob' }, { manager });
        await app.get(AuditService).record({ action: 'nda_signed', entityType: 'NDA', entityId: 'atomic-2', userId: 'bob' }, { manager });
      });
      await app.get(AuditSealer).sealNow();
    } finally {
      await app.close();
    }
  }, 120_000);

  afterAll(async () => {
    await Sentry.close(2000);
    await ingest?.stop();
    await db?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  function keyedApp(url: string, audit: AuditModuleOptions = {}): Promise<INestApplication> {
    return startSealingApp(url, { ...audit, integrity: { intervalMs: 3_600_000, entryKeys, ...audit.integrity } });
  }

  async function logMany(app: INestApplication, prefix: string, n: number): Promise<void> {
    const audit = app.get(AuditService);
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        audit.log({ action: 'nda_created', entityType: 'NDA', entityId: `${prefix}-${i}`, userId: 'alice' }),
      ),
    );
  }

  async function copy(): Promise<{
    name: string;
    url: string;
    sql: (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;
  }> {
    const name = `case${++copies}`;
    await db.query(`CREATE DATABASE ${name} TEMPLATE base`);
    return { name, url: db.url(name), sql: (text, params = []) => db.query(text, params, name) };
  }

  /** Seals what there is with a sealer holding the entry key; returns the `audit.forged` lines it wrote. */
  async function sealWithKey(url: string): Promise<{ forged: string[]; health: { forged: number } }> {
    const stderr = new StderrCapture();
    try {
      const app = await keyedApp(url);
      try {
        await app.get(AuditSealer).sealNow();
        const health = app.get(DbHealthIndicator).isHealthy().audit_db as unknown as { integrity: { forged: number } };
        return { forged: stderr.of(AUDIT_EVENTS.forged).map((line) => String(line.auditId)), health: health.integrity };
      } finally {
        await app.close();
      }
    } finally {
      stderr.restore();
    }
  }

  const realRow = async (sql: (text: string) => Promise<Record<string, unknown>[]>) =>
    (await sql(`SELECT * FROM audit_log WHERE entity_id = 'nda-3'`))[0];
  const FORGED = ['01900000-0000-7000-8000-00000000f001', '01900000-0000-7000-8000-00000000f002'];

  it('verifies the trail clean with the entry key: module rows authentic (record() ones too), older rows counted apart', async () => {
    const { url } = await copy();
    const withKey = await verify(url, '--entry-key', entryKey);
    expect(withKey.anomalies).toEqual([]);
    expect(withKey.out.find((line) => line.startsWith('audit-verify:'))).toMatch(
      /^audit-verify: 15 rows verified, \d seals verified, 0 rows not sealed yet, 0 anomalies$/,
    );
    expect(withKey.out.find((line) => line.startsWith('entry authentication:'))).toMatch(
      /^entry authentication: checked, 12 rows authentic, 3 rows written before entry authentication \(from transaction \d+ on\)$/,
    );
    expect(withKey.code).toBe(0);
    const withoutKey = await verify(url);
    expect(withoutKey.out.find((line) => line.startsWith('entry authentication:'))).toMatch(/^entry authentication: NOT CHECKED/);
    expect(withoutKey.code).toBe(0);
  }, 30_000);

  it('a superuser with triggers off inserts rows backdated by copying a real row: never sealed, named as forged', async () => {
    const { url, sql } = await copy();
    // Copies of a real row with another user: one without a code, one with the real row's code.
    await sql(
      `ALTER TABLE audit_log DISABLE TRIGGER USER;
       INSERT INTO audit_log (id, occurred_at, recorded_at, action, entity_type, entity_id, user_id, outcome, changes, metadata, auth_code)
       SELECT v.id::uuid, occurred_at, recorded_at, action, entity_type, entity_id, 'mallory', outcome, changes, metadata,
              CASE WHEN v.n = 1 THEN NULL ELSE auth_code END
       FROM audit_log, (VALUES (1, '${FORGED[0]}'), (2, '${FORGED[1]}')) AS v(n, id) WHERE entity_id = 'nda-3';
       ALTER TABLE audit_log ENABLE TRIGGER USER`,
    );
    const copied = await sql(`SELECT count(DISTINCT (occurred_at, recorded_at))::int AS n FROM audit_log WHERE entity_id = 'nda-3'`);
    expect(copied).toEqual([{ n: 1 }]);
    await expectForged(url);
  }, 60_000);

  it("the app's own least-privilege role inserts rows: never sealed, named as forged", async () => {
    const { name, url, sql } = await copy();
    const real = await realRow(sql);
    await sql(`CREATE ROLE app_${name} LOGIN PASSWORD 'app'`);
    await sql(`GRANT INSERT, SELECT ON audit_log TO app_${name}`);
    const app = await db.connect(name);
    await app.query(`SET ROLE app_${name}`);
    try {
      for (const [i, id] of FORGED.entries()) {
        await app.query(
          `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, auth_code) VALUES ($1, $2, $3, $4, $5, 'mallory', 'success', $6)`,
          [id, real.occurred_at, real.action, real.entity_type, real.entity_id, i === 0 ? null : real.auth_code],
        );
      }
    } finally {
      await app.end();
    }
    await expectForged(url);
  }, 60_000);

  /** The forged rows FORGED: named by verify with the key before sealing, refused by the sealer, named by verify after it. */
  async function expectForged(url: string): Promise<void> {
    const before = await verify(url, '--entry-key', entryKey);
    expect(before.anomalies.sort()).toEqual(FORGED.map((id) => `ANOMALY row_forged row ${id}`));
    expect(before.out).toContain(`ANOMALY row_forged row ${FORGED[1]}: its entry code does not match its content`);
    expect(before.code).toBe(1);

    const { forged, health } = await sealWithKey(url);
    expect(forged.sort()).toEqual(FORGED);
    expect(health.forged).toBe(2);
    await Sentry.flush(2000);
    const warnings = ingest.events.filter((event) => event.fingerprint?.[0] === 'audit-forged-rows');
    expect(warnings.at(-1)).toMatchObject({ level: 'warning', contexts: { audit: { count: 2 } } });
    const sealed = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_seal AS s WHERE position(decode(replace($1, '-', ''), 'hex') IN s.manifest) > 0`,
      [FORGED[0]],
      url.split('/').at(-1),
    );
    expect(sealed).toEqual([{ n: 0 }]);
    // A second run does not report them again: the seal's range covers them.
    expect((await sealWithKey(url)).forged).toEqual([]);

    for (const args of [['--entry-key', entryKey], []]) {
      const after = await verify(url, ...args);
      expect(after.anomalies.sort()).toEqual(FORGED.map((id) => `ANOMALY row_forged row ${id}`));
      expect(after.out.find((line) => line.startsWith('audit-verify:'))).toMatch(/ 0 rows not sealed yet, 2 anomalies/);
      expect(after.code).toBe(1);
    }
  }

  it('entries of a 10-minute outage, spooled and replayed at the next start, verify clean', async () => {
    const { url } = await copy();
    const spoolDir = join(work, 'spool');
    const stderr = new StderrCapture();
    const sick = await sickApp(spoolDir);
    const started = Date.now() - 10 * 60_000;
    try {
      await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          sick.get(AuditService).log({ action: 'nda_created', entityId: `outage-${i}`, occurredAt: new Date(started + i * 2 * 60_000) }),
        ),
      );
    } finally {
      await sick.close();
      stderr.restore();
    }
    expect((await readdir(spoolDir)).length).toBeGreaterThan(0);
    const app = await keyedApp(url, { spoolDir });
    try {
      await waitFor(
        async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id LIKE 'outage-%'`, [], url.split('/').at(-1))).length === 6,
      );
      await app.get(AuditSealer).sealNow();
    } finally {
      await app.close();
    }
    const result = await verify(url, '--entry-key', entryKey);
    expect(result.anomalies).toEqual([]);
    expect(result.out.find((line) => line.startsWith('entry authentication:'))).toMatch(
      /checked, 18 rows authentic, 3 rows written before/,
    );
    expect(result.code).toBe(0);
  }, 60_000);

  it('entries replayed from a CloudWatch export of their audit.buffered lines verify clean', async () => {
    const { url, name } = await copy();
    const stderr = new StderrCapture();
    let lines: string;
    try {
      const sick = await sickApp(null);
      try {
        await Promise.all(
          Array.from({ length: 4 }, (_, i) =>
            sick.get(AuditService).log({ action: 'nda_created', entityId: `exported-${i}`, changes: { b: 1e21, a: 'x', é: [0.1, null] } }),
          ),
        );
      } finally {
        await sick.close();
      }
      lines = stderr
        .of(AUDIT_EVENTS.buffered)
        .map((line) => `2026-12-04T10:00:00.000Z ${JSON.stringify(line)}\n`)
        .join('');
    } finally {
      stderr.restore();
    }
    const file = join(work, 'export.log');
    await writeFile(file, lines);
    const { records } = await readReplaySource([file]);
    expect(records.map((r) => r.authCode?.split(':')[1])).toEqual(['k1', 'k1', 'k1', 'k1']);
    const { sql, parameters } = buildAuditInsert('audit_log', records);
    await db.query(sql, parameters, name);
    await sealWithKey(url);
    const result = await verify(url, '--entry-key', entryKey);
    expect(result.anomalies).toEqual([]);
    expect(result.out.find((line) => line.startsWith('entry authentication:'))).toMatch(/checked, 16 rows authentic/);
    expect(result.code).toBe(0);
  }, 60_000);

  it('rows written before the boundary are counted apart, never as authentic; a row without a code after it is forged even without the key', async () => {
    const { url, sql } = await copy();
    const result = await verify(url);
    expect(result.out.find((line) => line.startsWith('entry authentication:'))).toMatch(/3 rows written before entry authentication/);
    await sql(`INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES ('${FORGED[0]}', now(), 'nda_deleted', 'success')`);
    const forged = await verify(url);
    expect(forged.anomalies).toEqual([`ANOMALY row_forged row ${FORGED[0]}`]);
    expect(forged.out).toContain(
      `ANOMALY row_forged row ${FORGED[0]}: it carries no entry code, and was written after entry authentication began (tx ${boundary(forged.out)})`,
    );
  }, 30_000);

  it('a sealer without the entry key seals nothing once the chain authenticates entries, and says why', async () => {
    const { url, name } = await copy();
    const seals = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_seal', [], name))[0].n;
    const before = await seals();
    const stderr = new StderrCapture();
    try {
      const app = await startSealingApp(url, { integrity: { intervalMs: 3_600_000 } });
      try {
        await logMany(app, 'keyless', 2);
        await app.get(AuditSealer).sealNow();
      } finally {
        await app.close();
      }
      expect(stderr.of(AUDIT_EVENTS.sealFailed).map((line) => (line.error as { code: string }).code)).toContain('AUDIT_ENTRY_KEYS_MISSING');
    } finally {
      stderr.restore();
    }
    expect(await seals()).toBe(before);
  }, 30_000);

  /** A keyed app whose audit database refuses connections (it starts anyway): entries go to the spool, or to the ring and stderr. */
  async function sickApp(spoolDir: string | null): Promise<INestApplication> {
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
          integrity: { enabled: true, intervalMs: 3_600_000, entryKeys },
        }),
      ],
    })
    class SickModule {}
    const moduleRef = await Test.createTestingModule({ imports: [SickModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    return app;
  }
});

function boundary(out: string[]): string {
  return /from transaction (\d+) on/.exec(out.find((line) => line.startsWith('entry authentication:')) ?? '')?.[1] ?? 'none';
}

async function waitFor(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
