import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { AuditSealer } from '../src/audit';
import { LEAF_FIELDS, LEAF_SQL } from '../src/audit/integrity/row-encoding';
import { readManifest } from '../src/audit/integrity/seal';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard, orderedId, startQueryApp } from './support/query-app';
import { StderrCapture } from './support/stderr';

interface RowRead {
  items: { id: string; occurredAt: string; action: string; seal?: { state: string; seq?: number; sealedAt?: string; detail?: string } }[];
}

// GET /audit/rows/:id: one row in full, with where it stands with the seals. Rows are inserted as
// the database's owner (the trigger gives each its transaction id) and sealed with sealNow(), in
// several seals, so that the binary search over audit_seal has ranges to choose between.
describe('one row read in full, with its seal status', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const read = async (id: string) =>
    (await request(app.getHttpServer()).get(`/audit/rows/${id}`).set('x-auditor', 'yes').expect(200)).body as RowRead;
  const insert = (ids: string[]) =>
    db.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome) SELECT u::uuid, now(), 'nda_created', 'success' FROM unnest($1::text[]) AS u`,
      [ids],
    );
  const ids = Array.from({ length: 12 }, (_, i) => orderedId(1000 + i));

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = (await startSealingApp(db.url(), {
      http: { guard: AuditorHeaderGuard },
      integrity: { intervalMs: 3_600_000 },
    })) as INestApplication<Server>;
    // Four seals of three rows each, every insert its own transaction.
    for (let seal = 0; seal < 4; seal += 1) {
      for (const id of ids.slice(seal * 3, seal * 3 + 3)) await insert([id]);
      await app.get(AuditSealer).sealNow();
    }
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('names the seal that holds each sealed row, as its manifest does, and when it was made', async () => {
    const seals = await db.query<{ seq: string; manifest: Buffer; sealed_at: Date }>(
      'SELECT seq::text, manifest, sealed_at FROM audit_seal',
    );
    const sealOf = new Map<string, { seq: number; sealedAt: string }>();
    for (const seal of seals) {
      for (const id of readManifest(seal.manifest).keys())
        sealOf.set(id, { seq: Number(seal.seq), sealedAt: seal.sealed_at.toISOString() });
    }
    expect(new Set([...sealOf.values()].map((s) => s.seq)).size).toBeGreaterThanOrEqual(4);
    for (const id of ids) {
      const { items } = await read(id);
      expect(items).toHaveLength(1);
      expect(items[0].id).toBe(id);
      expect(items[0].seal).toEqual({ state: 'sealed', ...sealOf.get(id) });
    }
  });

  it("finds a row whose id also appears in its manifest at a place that is not an entry's start", async () => {
    // Row b's id is the second half of row a's manifest entry: a's id's last 8 bytes, then a's leaf's first 8.
    const a = orderedId(1500);
    await insert([a]);
    const [{ leaf }] = await db.query<{ leaf: Buffer }>(`SELECT ${LEAF_SQL} AS leaf FROM audit_log AS l, ${LEAF_FIELDS} WHERE l.id = $1`, [
      a,
    ]);
    const hex = Buffer.concat([Buffer.from(a.replace(/-/g, ''), 'hex').subarray(8), leaf.subarray(0, 8)]).toString('hex');
    const b = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    await insert([b]);
    await app.get(AuditSealer).sealNow();
    const [{ seq }] = await db.query<{ seq: string }>('SELECT max(seq)::text AS seq FROM audit_seal');
    const found = await db.query<{ at: number }>('SELECT position(uuid_send($1::uuid) IN manifest) AS at FROM audit_seal WHERE seq = $2', [
      b,
      seq,
    ]);
    expect(found[0].at).toBe(1 + 8);
    expect((await read(b)).items[0].seal).toMatchObject({ state: 'sealed', seq: Number(seq) });
    expect((await read(a)).items[0].seal).toMatchObject({ state: 'sealed', seq: Number(seq) });
  });

  it('says "unsealed" for a row written after the newest seal, while a transaction holds the sealing horizon back', async () => {
    const holder = await db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_current_xact_id()');
      const late = orderedId(2000);
      await insert([late]);
      await app.get(AuditSealer).sealNow();
      expect((await read(late)).items[0].seal).toEqual({ state: 'unsealed' });
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
  });

  it('says "altered" for a sealed row changed afterwards, and "forged" for rows planted in a sealed range or with a sealed id', async () => {
    const owner = await db.connect();
    try {
      // As a superuser with the triggers off: what the append-only triggers and the tx trigger stop otherwise.
      await owner.query('SET session_replication_role = replica');
      await owner.query(`UPDATE audit_log SET action = 'nda_deleted' WHERE id = $1`, [ids[4]]);
      const [{ tx }] = (await owner.query<{ tx: string }>('SELECT tx::text AS tx FROM audit_log WHERE id = $1', [ids[7]])).rows;
      const planted = orderedId(1007 + 500);
      await owner.query(`INSERT INTO audit_log (id, occurred_at, action, outcome, tx) VALUES ($1, now(), 'nda_created', 'success', $2)`, [
        planted,
        tx,
      ]);
      // A second row with a sealed row's id (the key is (id, occurred_at)).
      await owner.query(
        `INSERT INTO audit_log (id, occurred_at, action, outcome, tx) VALUES ($1, now() - interval '1 day', 'nda_signed', 'success', $2)`,
        [ids[1], tx],
      );
      // A tx that is no transaction's: never sealed.
      const invalid = orderedId(3000);
      await owner.query(`INSERT INTO audit_log (id, occurred_at, action, outcome, tx) VALUES ($1, now(), 'nda_created', 'success', 2)`, [
        invalid,
      ]);

      expect((await read(ids[4])).items[0].seal).toMatchObject({ state: 'altered', seq: expect.any(Number) });
      expect((await read(planted)).items[0].seal).toMatchObject({
        state: 'forged',
        seq: expect.any(Number),
        detail: expect.stringContaining('does not name it'),
      });
      const twins = (await read(ids[1])).items;
      expect(twins.map((row) => [row.action, row.seal?.state])).toEqual([
        ['nda_created', 'sealed'],
        ['nda_signed', 'forged'],
      ]);
      expect((await read(invalid)).items[0].seal).toEqual({ state: 'unsealable', detail: "its tx (2) is no transaction's id" });
    } finally {
      await owner.end();
    }
  });

  it('answers an empty list for an id no row has, and 400 for one that is not a UUID', async () => {
    expect(await read(orderedId(9999))).toEqual({ items: [] });
    const bad = await request(app.getHttpServer()).get('/audit/rows/not-a-uuid').set('x-auditor', 'yes').expect(400);
    expect((bad.body as { code: string }).code).toBe('AUDIT_INVALID_QUERY');
    await request(app.getHttpServer()).get(`/audit/rows/${ids[0]}?limit=1`).set('x-auditor', 'yes').expect(400);
    await request(app.getHttpServer()).get(`/audit/rows/${ids[0]}`).expect(403);
  });

  it('gives no seal field with integrity off', async () => {
    const plain = await startQueryApp(db.url());
    try {
      const body = (await request(plain.getHttpServer()).get(`/audit/rows/${ids[0]}`).set('x-auditor', 'yes').expect(200)).body as RowRead;
      expect(body.items).toHaveLength(1);
      expect(body.items[0]).not.toHaveProperty('seal');
    } finally {
      await plain.close();
    }
  });
});
