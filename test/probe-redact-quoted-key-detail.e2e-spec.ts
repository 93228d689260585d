import { type DatabaseError } from 'pg';
import { AuditEntryNormalizer } from '../src/audit/audit-entry';
import { AUDIT_DEFAULTS } from '../src/audit/audit-options';
import { TestPostgres } from './support/postgres';

// Promise (docs/FAILURES.md, "Safe output"): "Text is redacted too: in any string, and in an
// `Error`'s message, the value after a redacted key (… PostgreSQL's `Key (token)=(…) already exists`
// whichever of its columns is a secret …)".
//
// Break: PostgreSQL writes a key detail's columns as its index definition names them: a column
// whose name needs quotes (TypeORM's default camelCase names: `"apiToken"`, `"resetPasswordToken"`)
// comes quoted, `Key ("apiToken")=(…)`, and an expression index names its expression,
// `Key (lower(token))=(…)`. The free-text reading allows one quote or one parenthesis between
// the key and `=` (`KEY_AND_SEPARATOR` in src/audit/redaction.ts), so neither detail is read as a
// key detail: the secret value stays in the text the module stores (and writes to stderr and
// Sentry).
//
// Observed: the normalized `changes.detail` keeps the secret verbatim for all three details
// PostgreSQL raised below; the unquoted `Key (api_token)=(…)` is redacted.
// Severity: high (a secret reaches the audit row, stderr and Sentry; camelCase columns are the
// default of a TypeORM entity, the module's own stack; a handler that answers a unique violation
// with `throw new ConflictException(error.detail)` has the interceptor store that message in the
// row's `metadata.error`, through this same reading).
//
// Second break (same promise): a value that holds ')' is read only up to that ')': PostgreSQL
// writes the values as they are, unescaped, so `Key (password)=(ab)<rest>) already exists.`
// keeps `<rest>`. Observed: `Key (password)=[REDACTED]s3cretdonotlog42) already exists.`
// Severity: low (a secret value with ')' in a unique column).
// Fix guess: read the key detail as PostgreSQL writes it: after `Key (`, up to the `)=(` that
// closes the column list, split on commas outside quotes and parentheses, unquote each column
// (and take the identifiers inside an expression), and redact the value list when any is a secret;
// read that value list up to the ')' that ends the detail (before ` already exists`, ` is not
// present`, ` conflicts with`, or the line's end), not the first ')'.
describe('probe: a PostgreSQL key detail whose column is quoted or an expression is redacted', () => {
  const database = 'probe_quoted_key_detail';
  const secret = 's3cretdonotlog42';
  let db: TestPostgres;
  const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, 64 * 1024);
  const sql = (text: string) => db.query(text, [], database);

  /** The detail PostgreSQL gives for inserting `secret` twice into `table`. */
  const detailOf = async (table: string, column: string): Promise<string> => {
    await sql(`INSERT INTO ${table} (${column}) VALUES ('${secret}')`);
    const error = await sql(`INSERT INTO ${table} (${column}) VALUES ('${secret}')`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    return (error as DatabaseError).detail ?? '';
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await sql(`CREATE TABLE plain (api_token text UNIQUE)`);
    await sql(`CREATE TABLE entity ("apiToken" text UNIQUE)`);
    await sql(`CREATE TABLE reset ("resetPasswordToken" text UNIQUE)`);
    await sql(`CREATE TABLE lowered (token text)`);
    await sql(`CREATE UNIQUE INDEX lowered_token ON lowered (lower(token))`);
    await sql(`CREATE TABLE parenthesized (password text UNIQUE)`);
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('redacts the value of every key detail PostgreSQL gives for a secret column', async () => {
    const details = {
      plain: await detailOf('plain', 'api_token'),
      entity: await detailOf('entity', '"apiToken"'),
      reset: await detailOf('reset', '"resetPasswordToken"'),
      lowered: await detailOf('lowered', 'token'),
    };
    // What PostgreSQL wrote: the value is in each detail.
    for (const detail of Object.values(details)) expect(detail).toContain(secret);
    // The module's normalizer redacts the unquoted one: the reading works on this path.
    expect(JSON.stringify(normalizer.normalize({ action: 'token_saved', changes: { detail: details.plain } }).record.changes)).toContain(
      '[REDACTED]',
    );
    const stored = Object.fromEntries(
      Object.entries(details).map(([name, detail]) => {
        const entry = normalizer.normalize({ action: 'token_saved', changes: { detail } });
        return [name, JSON.stringify(entry.record.changes)];
      }),
    );
    expect(stored).toEqual({
      plain: expect.not.stringContaining(secret),
      entity: expect.not.stringContaining(secret),
      reset: expect.not.stringContaining(secret),
      lowered: expect.not.stringContaining(secret),
    });
  }, 60_000);

  it('redacts the whole value of a key detail whose value holds a closing parenthesis', async () => {
    await sql(`INSERT INTO parenthesized (password) VALUES ('ab)${secret}')`);
    const error = await sql(`INSERT INTO parenthesized (password) VALUES ('ab)${secret}')`).then(
      () => undefined,
      (e: unknown) => e,
    );
    const detail = (error as DatabaseError).detail ?? '';
    expect(detail).toContain(secret);
    const entry = normalizer.normalize({ action: 'password_saved', changes: { detail } });
    expect(JSON.stringify(entry.record.changes)).not.toContain(secret);
  }, 60_000);
});
