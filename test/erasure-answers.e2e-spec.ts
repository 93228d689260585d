import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createAuditDatabase } from './support/audit-database';
import { TestPostgres } from './support/postgres';

const WRITER = { user: 'answers_writer', password: 'answers-writer-password' };

/** The function's answer, oldest row first: `[row label, state]`. */
type Answer = [string, string][];

/** Rows of the subjects below: erasable ones (salt and commitments) and one written before commitments. */
const ROWS = [
  ['a1', 'u-1', 'Doc', '1', true],
  ['a2', 'u-1', 'Doc', '2', true],
  ['a3', 'u-1', 'Doc', '1', true],
  ['b1', 'u-2', 'Doc', '9', true],
  ['b2', 'u-3', 'Doc', '9', false],
  ['b3', 'u-2', 'Doc', '9', true],
  ['c1', 'u-4', 'Doc', '4', true],
] as const;

describe('audit_log_erase: what it answers for each row and what it changes', () => {
  let db: TestPostgres;
  let writer: Client;
  const ids = new Map<string, string>();

  beforeAll(async () => {
    db = await TestPostgres.start();
    await createAuditDatabase(db, 'answers', WRITER);
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO ${WRITER.user}`, [], 'answers');
    for (const [i, [label, user, type, entity, committed]] of ROWS.entries()) {
      const id = randomUUID();
      ids.set(id, label);
      await db.query(
        `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, changes, personal, commitments)
         VALUES ($1, now() - make_interval(secs => 100 - $2::int), 'edited', $3, $4, $5, 'success', '203.0.113.9', 'agent', '{}', $6, $7)`,
        [
          id,
          i,
          type,
          entity,
          user,
          committed ? `{"salt":"${'s'.repeat(43)}","values":[]}` : null,
          committed ? '[[["user_id"],"c"],[["ip"],"c"],[["user_agent"],"c"]]' : null,
        ],
        'answers',
      );
    }
    writer = new Client({ connectionString: db.url('answers', WRITER.user, WRITER.password) });
    await writer.connect();
  }, 90_000);

  afterAll(async () => {
    await writer?.end();
    await db?.stop();
  });

  const erase = async (client: Client, subject: [string | null, string | null, string | null], erasure: string, dryRun: boolean) => {
    const { rows } = await client.query<{ id: string; state: string }>(
      'SELECT id::text, state FROM audit_log_erase($1, $2, $3, $4::uuid, $5)',
      [...subject, erasure, dryRun],
    );
    return rows.map((r): [string, string] => [ids.get(r.id) ?? r.id, r.state]);
  };
  const stored = async (labels: string[]) => {
    const rows = await db.query<{ id: string; user_id: string; ip: string; user_agent: string; personal: string | null }>(
      'SELECT id::text, user_id, ip, user_agent, personal FROM audit_log ORDER BY occurred_at',
      [],
      'answers',
    );
    return rows.filter((r) => labels.includes(ids.get(r.id)!)).map((r) => [ids.get(r.id), r.user_id, r.ip, r.user_agent, r.personal]);
  };

  it('answers each row of an entity in a dry run, erased, already erased or not erasable, and changes nothing', async () => {
    const before = await stored(['b1', 'b2', 'b3']);
    const expected: Answer = [
      ['b1', 'erased'],
      ['b2', 'not_erasable'],
      ['b3', 'erased'],
    ];
    expect(await erase(writer, [null, 'Doc', '9'], randomUUID(), true)).toEqual(expected);
    expect(await stored(['b1', 'b2', 'b3'])).toEqual(before);

    const first = randomUUID();
    expect(await erase(writer, [null, 'Doc', '9'], first, false)).toEqual(expected);
    const marker = `{"erased":"${first}"}`;
    expect(await stored(['b1', 'b2', 'b3'])).toEqual([
      ['b1', '[ERASED]', '[ERASED]', '[ERASED]', marker],
      ['b2', 'u-3', '203.0.113.9', 'agent', null],
      ['b3', '[ERASED]', '[ERASED]', '[ERASED]', marker],
    ]);
    expect(await erase(writer, [null, 'Doc', '9'], randomUUID(), false)).toEqual([
      ['b1', 'already_erased'],
      ['b2', 'not_erasable'],
      ['b3', 'already_erased'],
    ]);
    expect((await stored(['b1', 'b3'])).map((r) => r[4])).toEqual([marker, marker]);
    expect(await stored(['c1'])).toEqual([['c1', 'u-4', '203.0.113.9', 'agent', `{"salt":"${'s'.repeat(43)}","values":[]}`]]);
  });

  it('answers rows a concurrent erasure took first as already erased, and leaves them with that erasure', async () => {
    const other = new Client({ connectionString: db.url('answers', WRITER.user, WRITER.password) });
    await other.connect();
    try {
      const first = randomUUID();
      await other.query('BEGIN');
      expect(await erase(other, ['u-1', null, null], first, false)).toEqual([
        ['a1', 'erased'],
        ['a2', 'erased'],
        ['a3', 'erased'],
      ]);
      // The second erasure waits for the first's row locks; the first commits once it waits.
      const second = erase(writer, ['u-1', null, null], randomUUID(), false);
      const waiting = async () =>
        (
          await db.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'",
            [WRITER.user],
            'answers',
          )
        )[0].n;
      while ((await waiting()) === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      await other.query('COMMIT');
      expect(await second).toEqual([
        ['a1', 'already_erased'],
        ['a2', 'already_erased'],
        ['a3', 'already_erased'],
      ]);
      const marker = `{"erased":"${first}"}`;
      expect((await stored(['a1', 'a2', 'a3'])).map((r) => r[4])).toEqual([marker, marker, marker]);
    } finally {
      await other.end();
    }
  });
});
