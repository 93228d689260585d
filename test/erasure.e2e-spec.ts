import { type INestApplication } from '@nestjs/common';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { AuditSealer, AuditService } from '../src/audit';
import { commitment } from '../src/audit/privacy/personal-values';
import { eventually } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { sealingKeys, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';

// The right to erasure on a sealed trail (issue 22): personal values are erased through
// audit_log_erase, the seals and entry codes still verify, the erasure is an entry of its own,
// and what is left cannot be tried against a dictionary of user ids. audit-verify names a value
// changed instead of erased, and an erasure no entry records.
describe('erasure on a sealed trail', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let url: string;
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const writer = { user: 'audit_writer', password: 'writer-pw' };

  const rows = (where: string, params: unknown[] = []) =>
    db.query<Record<string, string | null>>(
      `SELECT id::text, user_id, ip, user_agent, personal, commitments, changes::text AS changes, metadata::text AS metadata, auth_code
       FROM audit_log WHERE ${where} ORDER BY occurred_at, id`,
      params,
      'audit',
    );
  const sealedRows = async () =>
    (await db.query<{ n: number }>('SELECT coalesce(sum(row_count), 0)::int AS n FROM audit_seal', [], 'audit'))[0].n;
  const total = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log', [], 'audit'))[0].n;
  const sealAll = async () => {
    const n = await total();
    await eventually(async () => {
      await app.get(AuditSealer).sealNow();
      return (await sealedRows()) === n;
    });
  };
  const check = () => verify(url, `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
  /** A session of the owner (a superuser). */
  const owner = async () => {
    const client = new Client({ connectionString: db.url('audit') });
    await client.connect();
    return client;
  };
  /** As a superuser with triggers off for the session: a change the database itself cannot refuse. */
  const tamper = async (sql: string, params: unknown[]) => {
    const client = await owner();
    try {
      await client.query('SET session_replication_role = replica');
      await client.query(sql, params);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    url = await createAuditDatabase(db, 'audit', writer);
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO ${writer.user}`, [], 'audit');
    app = await startErasureApp(url, {
      privacy: { personalData: ['changes.body.email', 'changes.entities[].fields.email', 'metadata.ip'] },
      integrity: {
        intervalMs: 3_600_000,
        signingKey: keys.privatePem,
        entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }],
      },
    });
    const audit = app.get(AuditService);
    for (let i = 0; i < 3; i++) {
      await audit.log({
        action: 'profile_updated',
        entityType: 'Profile',
        entityId: `p-${i}`,
        userId: 'u-1',
        ip: '203.0.113.7',
        userAgent: 'Mozilla/5.0 (u-1 laptop)',
        changes: { body: { email: 'ana@example.com', plan: 'pro' } },
        metadata: { ip: '203.0.113.7', status: 200 },
      });
    }
    await audit.log({ action: 'profile_viewed', userId: 'u-2', ip: '198.51.100.2', changes: { body: { email: 'bo@example.com' } } });
    await audit.log({
      action: 'user_imported',
      entityType: 'User',
      entityId: '7',
      userId: 'admin-1',
      changes: { entities: [{ fields: { email: 'cy@example.com', name: 'Cy' } }, { fields: { email: 'dee@example.com' } }] },
    });
    await sealAll();
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('writes personal values apart, each committed to, the rest of the row as before', async () => {
    const [row] = await rows(`user_id = 'u-1'`);
    expect(JSON.parse(row.changes as string)).toEqual({ body: { plan: 'pro' } });
    expect(JSON.parse(row.metadata as string)).toEqual({ status: 200 });
    const personal = JSON.parse(row.personal as string) as { salt: string; values: [unknown[], string][] };
    expect(personal.values).toEqual([
      [['changes', 'body', 'email'], '"ana@example.com"'],
      [['metadata', 'ip'], '"203.0.113.7"'],
    ]);
    expect(JSON.parse(row.commitments as string)).toEqual([
      [['user_id'], commitment(personal.salt, ['user_id'], 'u-1')],
      [['ip'], commitment(personal.salt, ['ip'], '203.0.113.7')],
      [['user_agent'], commitment(personal.salt, ['user_agent'], 'Mozilla/5.0 (u-1 laptop)')],
      [['changes', 'body', 'email'], commitment(personal.salt, ['changes', 'body', 'email'], '"ana@example.com"')],
      [['metadata', 'ip'], commitment(personal.salt, ['metadata', 'ip'], '"203.0.113.7"')],
    ]);
    expect(row.auth_code).toMatch(/^v2:k1:/);
    const [imported] = await rows(`entity_type = 'User'`);
    expect(JSON.parse(imported.changes as string)).toEqual({ entities: [{ fields: { name: 'Cy' } }, { fields: {} }] });
    expect((await check()).out).toContain('result: CLEAN');
  }, 60_000);

  it('a dry run lists what would change and changes nothing', async () => {
    const before = await rows('true');
    const result = await app.get(AuditService).erase({ userId: 'u-1', dryRun: true });
    expect(result).toMatchObject({ dryRun: true, erased: 3, alreadyErased: 0, notErasable: 0, entryId: null });
    expect(result.rows.map((r) => r.state)).toEqual(['erased', 'erased', 'erased']);
    expect(await rows('true')).toEqual(before);
  });

  it('erases a user as actor: values and salts gone, seals and entry codes still verify, the erasure an entry of its own', async () => {
    const result = await app.get(AuditService).erase({ userId: 'u-1', requestedBy: 'dpo-1', reason: 'request #118' });
    expect(result).toMatchObject({ dryRun: false, erased: 3, alreadyErased: 0, notErasable: 0 });
    for (const row of await rows(`entity_type = 'Profile'`)) {
      expect(row).toMatchObject({
        user_id: '[ERASED]',
        ip: '[ERASED]',
        user_agent: '[ERASED]',
        personal: `{"erased":"${result.erasureId}"}`,
      });
    }
    expect(await rows(`user_id = 'u-2'`)).toHaveLength(1);
    const [entry] = await rows(`action = 'audit_erasure'`);
    expect(entry.id).toBe(result.entryId);
    expect(entry.user_id).toBe('dpo-1');
    expect(JSON.parse(entry.changes as string)).toEqual({
      erasure: {
        id: result.erasureId,
        subject: result.subject,
        keyFingerprint: expect.stringMatching(/^[\w-]{16}$/),
        by: 'user',
        rows: 3,
        // The rows erased by month of their occurred_at (UTC), as the erasure answered them.
        months: result.rows.reduce<Record<string, number>>(
          (months, r) => ({ ...months, [r.occurredAt.slice(0, 7)]: (months[r.occurredAt.slice(0, 7)] ?? 0) + 1 }),
          {},
        ),
        alreadyErased: 0,
        notErasable: 0,
      },
    });
    expect(JSON.stringify(entry)).not.toContain('u-1');
    await sealAll();
    const report = await check();
    expect(report.out).toContain('erasure: 3 rows erased under 1 erasure entries');
    expect(report.out).toContain('result: CLEAN');
    expect(report.code).toBe(0);
    // Again: nothing left to erase, an entry all the same.
    expect(await app.get(AuditService).erase({ userId: 'u-1' })).toMatchObject({ erased: 0 });
  }, 60_000);

  it('erases an entity as subject, its personal paths inside arrays included', async () => {
    const result = await app.get(AuditService).erase({ entityType: 'User', entityId: '7' });
    expect(result).toMatchObject({ erased: 1 });
    const [row] = await rows(`entity_type = 'User'`);
    expect(row).toMatchObject({ user_id: '[ERASED]', ip: null, user_agent: null, personal: `{"erased":"${result.erasureId}"}` });
    expect(JSON.stringify(row)).not.toContain('@example.com');
    await sealAll();
    const report = await check();
    expect(report.out).toContain('erasure: 4 rows erased under 3 erasure entries');
    expect(report.out).toContain('result: CLEAN');
  }, 60_000);

  it('leaves nothing a dictionary of user ids can be tried against (the row, the seal, the manifest, the erasure entry)', async () => {
    const dictionary = [...Array.from({ length: 200 }, (_, i) => `u-${i}`), '203.0.113.7', '198.51.100.2'];
    /** Every guess that some text left in the database confirms: a bare hash, or a commitment with any salt found. */
    const attack = async () => {
      const left = [
        ...(await db.query<{ t: string }>(`SELECT l::text AS t FROM audit_log AS l`, [], 'audit')),
        ...(await db.query<{ t: string }>(`SELECT s::text AS t FROM audit_seal AS s`, [], 'audit')),
      ]
        .map((r) => r.t)
        .join('\n');
      const salts = [...left.matchAll(/salt\W+([A-Za-z0-9_-]{43})/g)].map((m) => m[1]);
      const confirmed = dictionary.filter((guess) => {
        const bare = createHash('sha256').update(guess).digest();
        if ([bare.toString('hex'), bare.toString('base64'), bare.toString('base64url')].some((h) => left.includes(h))) return true;
        return salts.some((salt) => ['user_id', 'ip'].some((column) => left.includes(commitment(salt, [column], guess))));
      });
      return { left, confirmed };
    };
    // u-2 was not erased: the attack finds it (so it would find u-1 had its salt been left).
    const { left, confirmed } = await attack();
    expect(confirmed).toEqual(['u-2', '198.51.100.2']);
    for (const erased of ['u-1', 'ana@example.com', '203.0.113.7', 'cy@example.com', 'laptop']) expect(left).not.toContain(erased);
  }, 30_000);

  it('names a personal value changed instead of erased, and an erasure no entry records', async () => {
    const [kept] = await rows(`user_id = 'u-2'`);
    await tamper(`UPDATE audit_log SET ip = '198.51.100.99' WHERE id = $1`, [kept.id]);
    let report = await check();
    expect(report.out.filter((l) => l.startsWith('ANOMALY'))).toEqual([
      expect.stringMatching(new RegExp(`^ANOMALY row_personal_changed row ${kept.id}: its value at ip does not match its commitment`)),
    ]);
    await tamper(`UPDATE audit_log SET ip = $2 WHERE id = $1`, [kept.id, kept.ip]);
    expect((await check()).out).toContain('result: CLEAN');

    await tamper(`UPDATE audit_log SET user_id = '[ERASED]', ip = '[ERASED]', personal = $2 WHERE id = $1`, [
      kept.id,
      JSON.stringify({ erased: randomUUID() }),
    ]);
    report = await check();
    expect(report.out.filter((l) => l.startsWith('ANOMALY'))).toEqual([
      expect.stringMatching(
        new RegExp(`^ANOMALY row_erased_unaccounted row ${kept.id}: erased under erasure .*, which no audit_erasure entry records`),
      ),
    ]);
    expect(report.code).toBe(1);
    await tamper(`UPDATE audit_log SET user_id = $2, ip = $3, personal = $4 WHERE id = $1`, [
      kept.id,
      kept.user_id,
      kept.ip,
      kept.personal,
    ]);
    expect((await check()).out).toContain('result: CLEAN');
  }, 60_000);

  it('lets the app role make no other change: no UPDATE, DELETE or TRUNCATE, the erasure flag of no use to it', async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      for (const sql of [
        `UPDATE audit_log SET action = 'x'`,
        `UPDATE audit_log SET user_id = '[ERASED]'`,
        `DELETE FROM audit_log`,
        `TRUNCATE audit_log`,
        `UPDATE audit_seal SET row_count = 0`,
      ]) {
        await expect(client.query(`BEGIN; SET LOCAL audit_log.erasing = 'on'; ${sql}; COMMIT`)).rejects.toThrow(/permission denied/);
        await client.query('ROLLBACK');
      }
      await expect(client.query(`SELECT * FROM audit_log_erase(NULL, NULL, NULL, $1, false)`, [randomUUID()])).rejects.toThrow(
        /needs a user id, or an entity type and id/,
      );
    } finally {
      await client.end();
    }
    // Even the owner, flag set, is refused anything but the erasure's own change.
    const superuser = await owner();
    try {
      await superuser.query(`BEGIN; SET LOCAL audit_log.erasing = 'on'`);
      await expect(superuser.query(`UPDATE audit_log SET action = 'x' WHERE user_id = 'u-2'`)).rejects.toThrow(
        /append-only: UPDATE refused/,
      );
      await superuser.query(`ROLLBACK; BEGIN; SET LOCAL audit_log.erasing = 'on'`);
      await expect(
        superuser.query(`UPDATE audit_log SET user_id = '[ERASED]', ip = '[ERASED]', personal = $1, action = 'x' WHERE user_id = 'u-2'`, [
          JSON.stringify({ erased: randomUUID() }),
        ]),
      ).rejects.toThrow(/append-only: UPDATE refused/);
      await superuser.query('ROLLBACK');
    } finally {
      await superuser.end();
    }
    expect((await check()).out).toContain('result: CLEAN');
  }, 30_000);

  it('erases across partitions: the legacy partition, the one of next month, and the default one (a date no monthly partition holds)', async () => {
    const audit = app.get(AuditService);
    const now = new Date();
    const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 2));
    for (const occurredAt of [new Date('2024-01-15T00:00:00Z'), nextMonth, new Date('2031-06-01T00:00:00Z')]) {
      await audit.log({
        action: 'profile_updated',
        userId: 'u-3',
        ip: '192.0.2.3',
        occurredAt,
        changes: { body: { email: 'u3@example.com' } },
      });
    }
    const partitions = await db.query<{ p: string }>(
      `SELECT DISTINCT tableoid::regclass::text AS p FROM audit_log WHERE user_id = 'u-3'`,
      [],
      'audit',
    );
    expect(partitions).toHaveLength(3);
    await sealAll();
    const result = await audit.erase({ userId: 'u-3' });
    expect(result).toMatchObject({ erased: 3, notErasable: 0 });
    expect(await rows(`ip = '192.0.2.3' OR user_id = 'u-3'`)).toEqual([]);
    // The entry records the rows erased in each month, by their occurred_at (what an archive's check accounts them by).
    const [entry] = await rows(`action = 'audit_erasure' AND entity_id = '${result.erasureId}'`);
    expect((JSON.parse(entry.changes as string) as { erasure: { months: unknown } }).erasure.months).toEqual({
      '2024-01': 1,
      [nextMonth.toISOString().slice(0, 7)]: 1,
      '2031-06': 1,
    });
    await sealAll();
    const report = await check();
    expect(report.out).toContain('erasure: 7 rows erased under 4 erasure entries');
    expect(report.out).toContain('result: CLEAN');
  }, 60_000);

  it('names rows the app role erased by calling audit_log_erase itself, which writes no entry', async () => {
    const [kept] = await rows(`user_id = 'u-2'`);
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      const erased = await client.query(`SELECT id::text, state FROM audit_log_erase('u-2', NULL, NULL, $1, false)`, [randomUUID()]);
      expect(erased.rows).toEqual([{ id: kept.id, state: 'erased' }]);
    } finally {
      await client.end();
    }
    await sealAll();
    const report = await check();
    expect(report.out.filter((l) => l.startsWith('ANOMALY'))).toEqual([
      expect.stringMatching(
        new RegExp(`^ANOMALY row_erased_unaccounted row ${kept.id}: erased under erasure .*, which no audit_erasure entry records`),
      ),
    ]);
    expect(report.out).toContain('erasure: 8 rows erased under 4 erasure entries');
    expect(report.code).toBe(1);
  }, 60_000);
});
