import { type INestApplication } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { type Server } from 'node:http';
import request from 'supertest';
import { AuditSealer, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';
import { StderrCapture } from './support/stderr';

interface RowRead {
  items: { id: string; userId: string | null; erasedBy: string | null; seal?: { state: string; seq?: number; detail?: string } }[];
}

// docs/PRIVACY.md: "Each row read also carries `erasedBy`: the id of the erasure that took its
// values (the `audit_erasure` entry's entity id), or null", and a row's seal status "is `sealed`
// only while each personal value still matches its commitment (or was erased)". The app's role
// holds EXECUTE on `audit_log_erase` (INTEGRITY.md, Roles): called directly, not through
// `erase()`, it wipes who did a sealed action under a made-up erasure id that no `audit_erasure`
// entry records. audit-verify names it (row_erased_unaccounted), and the row read says `altered`,
// also when an `audit_erasure` row inserted by hand (no entry code) names the erasure; a row erased
// by erase() (its entry written in the same transaction) still reads `sealed`.
describe('an erased marker no erasure entry records, on the read side', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  const read = async (id: string) =>
    (await request(app.getHttpServer()).get(`/audit/rows/${id}`).set('x-auditor', 'yes').expect(200)).body as RowRead;

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

  it('does not read a sealed row wiped by audit_log_erase outside erase() as sealed and erased by an erasure', async () => {
    await app.get(AuditService).log({
      action: 'payment_approved',
      entityType: 'Payment',
      entityId: 'pay-planted',
      userId: 'mallory',
      ip: '192.0.2.5',
      changes: { body: { email: 'mallory@example.com' } },
    });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'pay-planted'`)).length === 1);
    const [{ id }] = await db.query<{ id: string }>(`SELECT id::text AS id FROM audit_log WHERE entity_id = 'pay-planted'`);
    await app.get(AuditSealer).sealNow();
    expect((await read(id)).items[0]).toMatchObject({ userId: 'mallory', erasedBy: null, seal: { state: 'sealed' } });

    // What the app's role may run: no audit_erasure entry is written.
    const madeUp = randomUUID();
    await db.query(`SELECT * FROM audit_log_erase('mallory', NULL, NULL, $1::uuid, false)`, [madeUp]);

    expect((await verify(db.url(), '--entry-key', entryKey)).anomalies).toEqual([`ANOMALY row_erased_unaccounted row ${id}`]);
    const after = (await read(id)).items[0];
    expect(after).toMatchObject({
      userId: '[ERASED]',
      erasedBy: madeUp,
      seal: { state: 'altered', detail: `erased under erasure ${madeUp}, which no authentic audit_erasure entry records` },
    });
  }, 60_000);

  it('does not read a row wiped outside erase() as sealed because a forged audit_erasure row names its erasure', async () => {
    // Only an authentic entry counts (docs/PRIVACY.md): the app's role inserts an `audit_erasure` row of its own
    // (no entry code) naming the made-up erasure; the sealer refuses it, audit-verify names both.
    await app.get(AuditService).log({
      action: 'payment_approved',
      entityType: 'Payment',
      entityId: 'pay-victim',
      userId: 'mallory',
      ip: '192.0.2.5',
      changes: { body: { email: 'mallory@example.com' } },
    });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'pay-victim'`)).length === 1);
    const [{ id }] = await db.query<{ id: string }>(`SELECT id::text AS id FROM audit_log WHERE entity_id = 'pay-victim'`);
    await app.get(AuditSealer).sealNow();
    expect((await read(id)).items[0]).toMatchObject({ userId: 'mallory', erasedBy: null, seal: { state: 'sealed' } });

    // Only what the app's role may do: EXECUTE audit_log_erase, INSERT into audit_log.
    const madeUp = randomUUID();
    await db.query(`SELECT * FROM audit_log_erase('mallory', NULL, NULL, $1::uuid, false)`, [madeUp]);
    const entry = { erasure: { id: madeUp, subject: 'p1:made-up', by: 'user', rows: 1, alreadyErased: 0, notErasable: 0 } };
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, changes)
       VALUES ($1::uuid, now(), 'audit_erasure', 'audit_erasure', $2, 'success', $3::jsonb)`,
      [randomUUID(), madeUp, JSON.stringify(entry)],
    );
    await app.get(AuditSealer).sealNow();

    // The trail's own checks see through it: the forged entry records nothing.
    const { anomalies } = await verify(db.url(), '--entry-key', entryKey);
    expect(anomalies).toContain(`ANOMALY row_erased_unaccounted row ${id}`);

    const after = (await read(id)).items[0];
    expect(after).toMatchObject({ userId: '[ERASED]', erasedBy: madeUp });
    expect(after.seal?.state).toBe('altered');
  }, 60_000);

  it('reads a sealed row erased by erase() as sealed, naming its erasure', async () => {
    await app.get(AuditService).log({ action: 'payment_approved', entityType: 'Payment', entityId: 'pay-erased', userId: 'walter' });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'pay-erased'`)).length === 1);
    const [{ id }] = await db.query<{ id: string }>(`SELECT id::text AS id FROM audit_log WHERE entity_id = 'pay-erased'`);
    await app.get(AuditSealer).sealNow();
    const { erasureId } = await app.get(AuditService).erase({ userId: 'walter' });
    expect((await read(id)).items[0]).toMatchObject({ userId: '[ERASED]', erasedBy: erasureId, seal: { state: 'sealed' } });
  }, 60_000);
});
