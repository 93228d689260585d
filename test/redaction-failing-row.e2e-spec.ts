import { type DatabaseError } from 'pg';
import { AuditEntryNormalizer } from '../src/audit/audit-entry';
import { AUDIT_DEFAULTS } from '../src/audit/audit-options';
import { TestPostgres } from './support/postgres';

// docs/FAILURES.md, "Safe output": PostgreSQL's `Failing row contains (…).`, the detail of a NOT
// NULL or CHECK violation, prints every column of the row whatever its name; its values become
// `[REDACTED]`. Each case makes PostgreSQL raise the detail and normalizes it as the module stores
// an entry's text (a handler that answers a violation with `throw new BadRequestException(error.detail)`
// has its message stored through this same reading). PostgreSQL writes the values unescaped, line
// breaks and parentheses included, cuts each at 64 bytes with `...`, and, for a role that may not
// read every column, names the columns it shows (`(id, note, email, age) = (…)`).
describe("PostgreSQL's failing row is stored without its values", () => {
  const database = 'redaction_failing_row';
  const secret = 's3cretdonotlog42';
  let db: TestPostgres;
  const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, 64 * 1024);
  const stored = (detail: string) => JSON.stringify(normalizer.normalize({ action: 'user_saved', changes: { detail } }).record.changes);

  /** The detail PostgreSQL gives for `statement`, which must fail, run as `role` when given. */
  const detailOf = async (statement: string, role?: string): Promise<string> => {
    const client = await db.connect(database);
    try {
      if (role) await client.query(`SET ROLE ${role}`);
      const error = await client.query(statement).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      return (error as DatabaseError).detail ?? '';
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query(
      `CREATE TABLE users (id int, note text, email text NOT NULL, age int CHECK (age >= 0), pin text DEFAULT '0000')`,
      [],
      database,
    );
    await db.query(`CREATE ROLE clerk`, [], database);
    await db.query(`GRANT INSERT ON users TO clerk`, [], database);
    await db.query(`GRANT SELECT (id, note) ON users TO clerk`, [], database);
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('redacts every value of a NOT NULL and of a CHECK violation, whatever the columns are named', async () => {
    const notNull = await detailOf(`INSERT INTO users VALUES (1, '${secret}', NULL, 30)`);
    const check = await detailOf(`INSERT INTO users VALUES (2, 'hello', '${secret}@example.org', -1)`);
    expect([notNull, check]).toEqual([
      `Failing row contains (1, ${secret}, null, 30, 0000).`,
      `Failing row contains (2, hello, ${secret}@example.org, -1, 0000).`,
    ]);
    expect([stored(notNull), stored(check)]).toEqual([
      JSON.stringify({ detail: 'Failing row contains [REDACTED].' }),
      JSON.stringify({ detail: 'Failing row contains [REDACTED].' }),
    ]);
  }, 60_000);

  it('redacts values that hold line breaks and parentheses, and values cut at 64 bytes', async () => {
    const broken = await detailOf(`INSERT INTO users VALUES (3, E'a).\\n${secret}) x', NULL, 1)`);
    const long = await detailOf(`INSERT INTO users VALUES (4, '${'x'.repeat(60)}${secret}', NULL, 1)`);
    expect([broken, long]).toEqual([
      `Failing row contains (3, a).\n${secret}) x, null, 1, 0000).`,
      `Failing row contains (4, ${'x'.repeat(60)}${secret.slice(0, 4)}..., null, 1, 0000).`,
    ]);
    expect(stored(broken)).not.toContain(secret);
    expect([stored(broken), stored(long)]).toEqual([
      JSON.stringify({ detail: 'Failing row contains [REDACTED].' }),
      JSON.stringify({ detail: 'Failing row contains [REDACTED].' }),
    ]);
  }, 60_000);

  it('redacts the values a role that may not read every column is shown, after their names', async () => {
    const detail = await detailOf(`INSERT INTO users (id, note, email, age) VALUES (5, '${secret}', NULL, 1)`, 'clerk');
    expect(detail).toBe(`Failing row contains (id, note, email, age) = (5, ${secret}, null, 1).`);
    expect(stored(detail)).toBe(JSON.stringify({ detail: 'Failing row contains [REDACTED].' }));
  }, 60_000);
});
