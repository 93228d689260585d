import { randomBytes } from 'node:crypto';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Entry keys rotate instance by instance (INTEGRITY.md, "Keys and rotation"): an instance not yet
// updated (entryKeys [k1]) that holds the sealer's lock stops its seal before a row signed with a
// key it does not hold (AUDIT_ENTRY_KEY_UNKNOWN) instead of judging it forged, so an updated
// instance seals it later and audit-verify with both keys finds no forged row.
describe('a rolling rotation of the entry key', () => {
  let db: TestPostgres;
  const k1 = { id: 'k1', secret: randomBytes(32).toString('base64') };
  const k2 = { id: 'k2', secret: randomBytes(32).toString('base64') };

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('trail');
    await db.createDatabase('cut');
    await db.createDatabase('madeup');
  }, 60_000);

  afterAll(() => db?.stop());

  // Twice: the second waits for the attempt start-up scheduled, so that no attempt runs unasked later.
  const settle = async (app: Awaited<ReturnType<typeof startSealingApp>>) => {
    await app.get(AuditSealer).sealNow();
    await app.get(AuditSealer).sealNow();
  };

  it('rows signed by the new key while an old instance seals verify clean with both keys', async () => {
    const stderr = new StderrCapture();
    const url = db.url('trail');
    const old = await startSealingApp(url, { integrity: { intervalMs: 3_600_000, entryKeys: [k1] } });
    try {
      await old.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'old-1' });
      await old.get(AuditSealer).sealNow();
      // The first instance updated: k2 signs, k1 still verifies.
      const updated = await startSealingApp(url, { integrity: { intervalMs: 3_600_000, entryKeys: [k2, k1] } });
      try {
        await settle(updated);
        await updated.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'new-1' });
        // The instance not updated yet happens to seal next.
        await old.get(AuditSealer).sealNow();
      } finally {
        await updated.close();
      }
    } finally {
      await old.close();
      stderr.restore();
    }
    const result = await verify(url, '--entry-key', `k2:${k2.secret},k1:${k1.secret}`);
    expect({ forgedLines: stderr.of(AUDIT_EVENTS.forged).length, anomalies: result.anomalies, code: result.code }).toEqual({
      forgedLines: 0,
      anomalies: [],
      code: 0,
    });
  }, 90_000);
  it('the old instance seals up to the first row of the new key, says so each attempt, and an updated instance seals the rest', async () => {
    const stderr = new StderrCapture();
    const url = db.url('cut');
    const inSeals = async () =>
      (
        await db.query<{ entity_id: string }>(
          `SELECT l.entity_id FROM audit_log AS l, audit_seal AS s
           WHERE position(decode(replace(l.id::text, '-', ''), 'hex') IN s.manifest) > 0 ORDER BY l.entity_id`,
          [],
          'cut',
        )
      ).map((r) => r.entity_id);
    let before: string[] = [];
    let after: string[] = [];
    const old = await startSealingApp(url, { integrity: { intervalMs: 3_600_000, entryKeys: [k1] } });
    try {
      const updated = await startSealingApp(url, { integrity: { intervalMs: 3_600_000, entryKeys: [k2, k1] } });
      try {
        await settle(old);
        await settle(updated);
        await old.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'a-old' });
        await updated.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'b-new' });
        await old.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'c-old' });
        await old.get(AuditSealer).sealNow();
        await old.get(AuditSealer).sealNow();
        before = await inSeals();
        await updated.get(AuditSealer).sealNow();
        after = await inSeals();
      } finally {
        await updated.close();
      }
    } finally {
      await old.close();
      stderr.restore();
    }
    const result = await verify(url, '--entry-key', `k2:${k2.secret},k1:${k1.secret}`);
    const failed = stderr.of(AUDIT_EVENTS.sealFailed).map((line) => line.error as { code: string; message: string });
    expect({
      before,
      after,
      failedCodes: failed.map((e) => e.code),
      namesKey: failed.every((e) => e.message.includes('"k2"')),
      forgedLines: stderr.of(AUDIT_EVENTS.forged).length,
      anomalies: result.anomalies,
      code: result.code,
    }).toEqual({
      before: ['a-old'],
      after: ['a-old', 'b-new', 'c-old'],
      failedCodes: ['AUDIT_ENTRY_KEY_UNKNOWN', 'AUDIT_ENTRY_KEY_UNKNOWN'],
      namesKey: true,
      forgedLines: 0,
      anomalies: [],
      code: 0,
    });
  }, 90_000);

  it('a key id no sealer holds stops sealing for unknownKeyGraceMs at most (here 0): its rows are forged and sealing goes on', async () => {
    const stderr = new StderrCapture();
    const url = db.url('madeup');
    const sealed: string[][] = [];
    const app = await startSealingApp(url, { integrity: { intervalMs: 3_600_000, entryKeys: [k1], unknownKeyGraceMs: 0 } });
    try {
      await settle(app);
      await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'a-before' });
      // Anyone with INSERT: a row whose code names a key id no instance will ever hold.
      await db.query(
        `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, auth_code)
         VALUES (gen_random_uuid(), now(), 'nda_created', 'NDA', 'b-made-up', 'success', $1)`,
        [`v1:nobody:${'A'.repeat(43)}`],
        'madeup',
      );
      await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'c-after' });
      for (let i = 0; i < 2; i++) {
        await app.get(AuditSealer).sealNow();
        sealed.push(
          (
            await db.query<{ entity_id: string }>(
              `SELECT l.entity_id FROM audit_log AS l, audit_seal AS s
               WHERE position(decode(replace(l.id::text, '-', ''), 'hex') IN s.manifest) > 0 ORDER BY l.entity_id`,
              [],
              'madeup',
            )
          ).map((r) => r.entity_id),
        );
      }
    } finally {
      await app.close();
      stderr.restore();
    }
    const result = await verify(url, '--entry-key', `k1:${k1.secret}`);
    expect({
      // A grace of 0: no wait at all (integrity-unknown-key-grace.e2e-spec.ts times a grace that is not 0).
      sealed,
      failedCodes: stderr.of(AUDIT_EVENTS.sealFailed).map((line) => (line.error as { code: string }).code),
      forged: stderr.of(AUDIT_EVENTS.forged).map((line) => [line.entityId, String(line.reason)]),
      anomalies: result.anomalies.map((a) => a.split(' ')[1]),
    }).toEqual({
      sealed: [
        ['a-before', 'c-after'],
        ['a-before', 'c-after'],
      ],
      failedCodes: [],
      forged: [['b-made-up', expect.stringContaining('names key "nobody"')]],
      anomalies: ['row_forged'],
    });
  }, 90_000);
});
