import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { AuditSealer, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';
import { StderrCapture } from './support/stderr';

interface RowRead {
  items: {
    id: string;
    userId: string | null;
    ip: string | null;
    changes: { body?: { email?: string; title?: string } } | null;
    seal?: { state: string; seq?: number };
  }[];
}

// With `privacy` on, a row's leaf (row encoding v2) covers the commitments, not the actor columns
// nor `personal`. GET /audit/rows/:id says "sealed" only when the row's leaf matches its manifest
// entry AND every personal value still matches its commitment (or was erased): a superuser who
// rewrites who did it, or a personal value, of a sealed row reads `altered`, and a path planted in
// `personal` is never put into the row read.
describe('the read side and personal values rewritten after sealing', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  const read = async (id: string) =>
    (await request(app.getHttpServer()).get(`/audit/rows/${id}`).set('x-auditor', 'yes').expect(200)).body as RowRead;
  const tamper = async (text: string, params: unknown[]) => {
    const client = new Client({ connectionString: db.url() });
    await client.connect();
    try {
      await client.query('SET session_replication_role = replica');
      await client.query(text, params);
    } finally {
      await client.end();
    }
  };
  const logged = async (entityId: string, userId: string, email: string, title = 'Draft') => {
    await app.get(AuditService).log({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId,
      userId,
      ip: '192.0.2.5',
      changes: { body: { email, title } },
    });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = $1`, [entityId])).length === 1);
    const [row] = await db.query<{ id: string }>(`SELECT id::text AS id FROM audit_log WHERE entity_id = $1`, [entityId]);
    return row.id;
  };

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = (await startSealingApp(db.url(), {
      http: { guard: AuditorHeaderGuard },
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    })) as INestApplication<Server>;
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('does not say "sealed" for a sealed row whose actor (user_id, ip) was rewritten', async () => {
    const id = await logged('p-actor', 'alice', 'alice@example.com');
    await app.get(AuditSealer).sealNow();
    const before = (await read(id)).items[0];
    expect([before.userId, before.seal?.state]).toEqual(['alice', 'sealed']);

    await tamper(`UPDATE audit_log SET user_id = 'mallory', ip = '198.51.100.7' WHERE id = $1`, [id]);

    // audit-verify names it (row_personal_changed); the read side must not call it sealed.
    expect((await verify(db.url(), '--entry-key', entryKey)).anomalies).toEqual([`ANOMALY row_personal_changed row ${id}`]);
    const after = (await read(id)).items[0];
    expect(after.userId).toBe('mallory');
    expect(after.seal).toMatchObject({ state: 'altered', detail: expect.stringContaining('user_id does not match its commitment') });
  }, 60_000);

  it('does not say "sealed" for a sealed row whose personal value in `personal` was rewritten', async () => {
    const id = await logged('p-value', 'bob', 'bob@example.com');
    await app.get(AuditSealer).sealNow();
    expect((await read(id)).items[0].changes?.body?.email).toBe('bob@example.com');

    await tamper(`UPDATE audit_log SET personal = replace(personal, 'bob@example.com', 'carol@example.com') WHERE id = $1`, [id]);

    const after = (await read(id)).items[0];
    expect(after.changes?.body?.email).toBe('carol@example.com');
    expect(after.seal).toMatchObject({
      state: 'altered',
      detail: expect.stringContaining('changes.body.email does not match its commitment'),
    });
  }, 60_000);

  it('never shows a non-personal field overwritten through a path planted in `personal`', async () => {
    const id = await logged('p-planted', 'dave', 'dave@example.com', 'Draft');
    await app.get(AuditSealer).sealNow();
    expect((await read(id)).items[0].changes?.body?.title).toBe('Draft');

    // `changes` (sealed) still says Draft; only committed paths of `personal` are put back.
    await tamper(
      `UPDATE audit_log SET personal = pg_catalog.jsonb_set(personal::jsonb, '{values}',
         (personal::jsonb -> 'values') || '[[["changes", "body", "title"], "\\"Approved by the board\\""]]'::jsonb)::text
       WHERE id = $1`,
      [id],
    );

    const [stored] = await db.query<{ changes: string }>(`SELECT changes::text AS changes FROM audit_log WHERE id = $1`, [id]);
    expect(stored.changes).toContain('Draft');
    const after = (await read(id)).items[0];
    expect(after.changes?.body?.title).toBe('Draft');
    expect(after.seal).toMatchObject({ state: 'altered', detail: expect.stringContaining('not the ones committed to') });
    const history = await request(app.getHttpServer()).get('/audit/entities/Profile/p-planted').set('x-auditor', 'yes').expect(200);
    expect((history.body as RowRead).items[0].changes?.body?.title).toBe('Draft');
  }, 60_000);
});
