import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_EVENTS, AUDIT_MIGRATIONS, AuditSealer, AuditService } from '../src/audit';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A logical dump and restore (pg_dump, or any copy with triggers off) keeps every row's tx, but a
// new server counts transaction ids from its own start: the module's new rows would get ids below
// the newest seal's horizon, never be sealed, and be named forged. The sealer says so at once
// (audit.chain_broken, AUDIT_TX_BEHIND_CHAIN, the horizon to reach) and calls nothing forged;
// after docs/RUNBOOK.md section 12 (the server's ids advanced past the chain's) it seals on, clean.
describe('a trail restored onto a new server by a logical copy', () => {
  let old: TestPostgres;
  let fresh: TestPostgres;
  let app: INestApplication | undefined;
  const keys = sealingKeys();
  const secret = randomBytes(32).toString('base64');
  const entryKey = `k1:${secret}`;
  const integrity = { intervalMs: 600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret }] };
  let horizon = 0n;
  let newestSeq = 0;

  beforeAll(async () => {
    [old, fresh] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    await old.createDatabase('trail');
    // The old server has lived: its transaction ids are well ahead of a new server's.
    await old.query(`DO $$ BEGIN FOR i IN 1..3000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$`, [], 'trail');
    const before = await startSealingApp(old.url('trail'), { integrity });
    try {
      for (let i = 0; i < 3; i++) await before.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: `n-${i}` });
      await before.get(AuditSealer).sealNow();
    } finally {
      await before.close();
    }
    // The restore: the same schema, then the rows and the seals loaded with triggers off.
    await fresh.createDatabase('trail');
    const migrator = new DataSource({ type: 'postgres', url: fresh.url('trail'), migrations: [...AUDIT_MIGRATIONS] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    const target = new Client({ connectionString: fresh.url('trail') });
    await target.connect();
    try {
      await target.query('SET session_replication_role = replica');
      for (const table of ['audit_log', 'audit_seal']) {
        for (const { j } of await old.query<{ j: string }>(`SELECT row_to_json(t)::text AS j FROM ${table} AS t`, [], 'trail')) {
          await target.query(`INSERT INTO ${table} SELECT * FROM json_populate_record(NULL::${table}, $1::json)`, [j]);
        }
      }
    } finally {
      await target.end();
    }
    const [newest] = await fresh.query<{ seq: number; horizon: string }>(
      'SELECT seq::int AS seq, horizon::text AS horizon FROM audit_seal ORDER BY seq DESC LIMIT 1',
      [],
      'trail',
    );
    [newestSeq, horizon] = [newest.seq, BigInt(newest.horizon)];
  }, 180_000);

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  afterAll(async () => {
    await Promise.all([old?.stop(), fresh?.stop()]);
  });

  it('verifies clean; the sealer on the server behind the chain stops, names the horizon, and calls nothing forged', async () => {
    const restored = await verify(fresh.url('trail'), `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    expect({ code: restored.code, anomalies: restored.anomalies }).toEqual({ code: 0, anomalies: [] });
    const stderr = new StderrCapture();
    try {
      app = await startSealingApp(fresh.url('trail'), { integrity });
      await app.get(AuditSealer).sealNow();
      expect(stderr.of(AUDIT_EVENTS.forged)).toEqual([]);
      const broken = stderr.of(AUDIT_EVENTS.chainBroken);
      expect(broken.map((line) => [line.foundSeq, line.code])).toEqual([[newestSeq, 'AUDIT_TX_BEHIND_CHAIN']]);
      expect(String(broken[0].detail)).toContain(
        `seal ${newestSeq} has a horizon of transaction ${horizon}, ahead of this server's transaction ids`,
      );
    } finally {
      stderr.restore();
    }
  }, 90_000);

  it("seals the new server's entries and verifies clean once its transaction ids are advanced past the chain's (RUNBOOK section 12)", async () => {
    await fresh.query(`DO $$ BEGIN WHILE pg_current_xact_id()::text::bigint < ${horizon} LOOP COMMIT; END LOOP; END $$`, [], 'trail');
    const stderr = new StderrCapture();
    try {
      app = await startSealingApp(fresh.url('trail'), { integrity });
      await app.get(AuditService).log({ action: 'nda_signed', entityType: 'NDA', entityId: 'after-restore' });
      await app.get(AuditSealer).sealNow();
      await app.get(AuditSealer).sealNow();
      expect({ forged: stderr.of(AUDIT_EVENTS.forged), broken: stderr.of(AUDIT_EVENTS.chainBroken) }).toEqual({ forged: [], broken: [] });
    } finally {
      stderr.restore();
    }
    const [{ n }] = await fresh.query<{ n: number }>('SELECT coalesce(sum(row_count), 0)::int AS n FROM audit_seal', [], 'trail');
    const after = await verify(fresh.url('trail'), `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    expect({ sealedRows: n, code: after.code, anomalies: after.anomalies }).toEqual({ sealedRows: 4, code: 0, anomalies: [] });
  }, 90_000);
});
