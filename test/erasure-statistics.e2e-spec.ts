import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/PRIVACY.md "What erasure keeps": erasure removes "the value and the salt together", and the
// erased value cannot be recovered by guessing. PostgreSQL keeps
// samples of each column in pg_statistic (most common values, histogram bounds) from the last
// ANALYZE, which autovacuum runs on its own and audit-verify runs on a table without statistics.
// An erasure changes too few rows of a large table to trigger a new one, and any role with SELECT
// on audit_log (the app's, the auditor's, a BI tool's) reads those samples through pg_stats.
describe('erased values and salts are not left in the planner statistics', () => {
  let db: TestPostgres;
  let url: string;
  let app: INestApplication;
  let stderr: StderrCapture;
  const secret = randomBytes(32).toString('base64');

  beforeAll(async () => {
    db = await TestPostgres.start();
    url = await createAuditDatabase(db, 'audit', { user: 'audit_writer', password: 'writer-pw' });
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO audit_writer`, [], 'audit');
    stderr = new StderrCapture();
    app = await startErasureApp(url, {
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret }] },
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('leaves no erased user id, value or salt readable by the app role once erase() has answered', async () => {
    const audit = app.get(AuditService);
    const users = ['u-9', ...Array.from({ length: 30 }, (_, i) => `other-${i}`)];
    for (const userId of users) {
      for (let n = 0; n < (userId === 'u-9' ? 10 : 2); n += 1) {
        await audit.log({
          action: 'profile_updated',
          entityType: 'Profile',
          entityId: `profile-${users.indexOf(userId)}-${n}`, // an entity id is kept by an erasure of the user
          userId,
          changes: { body: { email: `${userId}@example.com` } },
        });
      }
    }
    await eventually(async () => (await db.query('SELECT count(*)::int AS n FROM audit_log', [], 'audit'))[0].n === 70);
    const salts = (await db.query<{ personal: string }>(`SELECT personal FROM audit_log WHERE user_id = 'u-9'`, [], 'audit')).map(
      (row) => (JSON.parse(row.personal) as { salt: string }).salt,
    );
    // As autovacuum's analyze (or audit-verify on a table never analyzed) would have done before.
    await db.query('ANALYZE audit_log', [], 'audit');
    expect((await audit.erase({ userId: 'u-9', requestedBy: 'dpo' })).erased).toBe(10);

    const client = new Client({ connectionString: url });
    await client.connect();
    let stats: string;
    try {
      const { rows } = await client.query<{ text: string }>(
        `SELECT coalesce(string_agg(concat_ws(' ', tablename, attname, most_common_vals::text, histogram_bounds::text), E'\\n'), '') AS text
         FROM pg_stats WHERE tablename LIKE 'audit_log%'`,
      );
      stats = rows[0].text;
    } finally {
      await client.end();
    }
    // Whole values of the arrays pg_stats prints ({a,"b c"}, JSON inside with its quotes escaped): a
    // random base64url value of another column (an auth code, a commitment) may hold "u-9" by chance.
    const values = new Set(stats.split(/[{},"\\\s]+/));
    const leaked = ['u-9', 'u-9@example.com', ...salts].filter((secretText) => values.has(secretText));
    expect(leaked).toEqual([]);
  }, 90_000);
});

describe('planner statistics gathered before the migration', () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 90_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('are removed by it for the personal columns, on the table and on every partition, and kept for the others', async () => {
    await db.createDatabase('before');
    const upTo = AUDIT_MIGRATIONS.slice(
      0,
      AUDIT_MIGRATIONS.findIndex((m) => m.name === 'AuditPartitionUpkeep1765800000000'),
    );
    const migrate = async (migrations: readonly unknown[]) => {
      const source = new DataSource({ type: 'postgres', url: db.url('before'), migrations: [...(migrations as never[])] });
      await source.initialize();
      try {
        await source.runMigrations();
      } finally {
        await source.destroy();
      }
    };
    await migrate(upTo);
    await db.query('SELECT * FROM audit_log_create_partitions(1)', [], 'before');
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome, user_id, ip, user_agent)
       SELECT gen_random_uuid(), now(), 'nda_created', 'success', 'person-' || (i % 3), '10.0.0.' || (i % 3), 'agent-' || (i % 3)
       FROM generate_series(1, 300) AS i`,
      [],
      'before',
    );
    await db.query('ANALYZE audit_log', [], 'before');
    const sampled = `SELECT DISTINCT attname FROM pg_stats WHERE tablename LIKE 'audit_log%' AND attname IN ('user_id', 'ip', 'user_agent', 'personal', 'action') ORDER BY 1`;
    expect(await db.query(sampled, [], 'before')).toEqual(
      ['action', 'ip', 'personal', 'user_agent', 'user_id'].map((attname) => ({ attname })),
    );

    await migrate(AUDIT_MIGRATIONS);
    await db.query('ANALYZE audit_log', [], 'before');
    expect(await db.query(sampled, [], 'before')).toEqual([{ attname: 'action' }]);
    // Partitions made after the migration keep none either.
    await db.query('SELECT * FROM audit_log_create_partitions(6)', [], 'before');
    const targets = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_inherits h JOIN pg_attribute a ON a.attrelid = h.inhrelid
       WHERE h.inhparent = 'audit_log'::regclass AND a.attname IN ('user_id', 'ip', 'user_agent', 'personal') AND a.attstattarget IS DISTINCT FROM 0`,
      [],
      'before',
    );
    expect(targets).toEqual([{ n: 0 }]);
  }, 90_000);
});
