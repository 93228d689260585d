import { type DatabaseError } from 'pg';
import { AuditEntryNormalizer } from '../src/audit/audit-entry';
import { AUDIT_DEFAULTS } from '../src/audit/audit-options';
import { TestPostgres } from './support/postgres';

// docs/FAILURES.md, "Safe output": "Text is redacted too: in any string, and in an `Error`'s
// message, the value after a redacted key (… PostgreSQL's `Key (token)=(…) already exists`
// whichever of its columns is a secret …)". Each case makes PostgreSQL raise the detail (a unique,
// foreign-key or exclusion violation) and normalizes it as the module stores an entry's text: a
// handler that answers a violation with `throw new ConflictException(error.detail)` has its
// message stored in the row's `metadata.error` through this same reading.
//
// PostgreSQL names a key's columns as its index does: quoted when the name needs quotes
// (TypeORM's default camelCase names, `"apiToken"`), an expression for an expression index
// (`lower(token)`), and writes the values unescaped, so a value may hold `)` or a line break.
describe('a PostgreSQL key detail is stored without the values of a secret column', () => {
  const database = 'redaction_key_detail';
  const secret = 's3cretdonotlog42';
  let db: TestPostgres;
  const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, 64 * 1024);
  const sql = (text: string) => db.query(text, [], database);
  const stored = (detail: string) => JSON.stringify(normalizer.normalize({ action: 'token_saved', changes: { detail } }).record.changes);

  /** The detail PostgreSQL gives for `statement`, which must fail. */
  const detailOf = async (statement: string): Promise<string> => {
    const error = await sql(statement).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    return (error as DatabaseError).detail ?? '';
  };

  /** The detail PostgreSQL gives for inserting `value` twice into `table`. */
  const duplicateDetail = async (table: string, column: string, value = secret): Promise<string> => {
    await sql(`INSERT INTO ${table} (${column}) VALUES ('${value}')`);
    return detailOf(`INSERT INTO ${table} (${column}) VALUES ('${value}')`);
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
    await sql(`CREATE TABLE owners (api_token text PRIMARY KEY)`);
    await sql(`CREATE TABLE grants (api_token text REFERENCES owners)`);
    await sql(`CREATE TYPE textrange AS RANGE (subtype = text)`);
    await sql(`CREATE TABLE spans (token_span textrange, EXCLUDE USING gist (token_span WITH &&))`);
    await sql(`CREATE TABLE titles (title text UNIQUE)`);
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('redacts the value of a unique violation on a plain, a quoted or an expression column', async () => {
    const details = {
      plain: await duplicateDetail('plain', 'api_token'),
      entity: await duplicateDetail('entity', '"apiToken"'),
      reset: await duplicateDetail('reset', '"resetPasswordToken"'),
      lowered: await duplicateDetail('lowered', 'token'),
    };
    expect(details).toEqual({
      plain: `Key (api_token)=(${secret}) already exists.`,
      entity: `Key ("apiToken")=(${secret}) already exists.`,
      reset: `Key ("resetPasswordToken")=(${secret}) already exists.`,
      lowered: `Key (lower(token))=(${secret}) already exists.`,
    });
    expect(Object.fromEntries(Object.entries(details).map(([name, detail]) => [name, stored(detail)]))).toEqual({
      plain: JSON.stringify({ detail: 'Key (api_token)=[REDACTED] already exists.' }),
      entity: JSON.stringify({ detail: 'Key ("apiToken")=[REDACTED] already exists.' }),
      reset: JSON.stringify({ detail: 'Key ("resetPasswordToken")=[REDACTED] already exists.' }),
      lowered: JSON.stringify({ detail: 'Key (lower(token))=[REDACTED] already exists.' }),
    });
  }, 60_000);

  it('redacts the whole value of a key detail whose value holds a closing parenthesis', async () => {
    const unique = await duplicateDetail('parenthesized', 'password', `ab)${secret}`);
    const foreign = await detailOf(`INSERT INTO grants (api_token) VALUES ('ab)${secret}')`);
    expect([unique, foreign]).toEqual([
      `Key (password)=(ab)${secret}) already exists.`,
      `Key (api_token)=(ab)${secret}) is not present in table "owners".`,
    ]);
    expect([stored(unique), stored(foreign)]).toEqual([
      JSON.stringify({ detail: 'Key (password)=[REDACTED] already exists.' }),
      JSON.stringify({ detail: 'Key (api_token)=[REDACTED] is not present in table "owners".' }),
    ]);
  }, 60_000);

  it('redacts the whole value of a key detail whose value spans two lines', async () => {
    await sql(`INSERT INTO owners VALUES (E'FIRSTLINE${secret}\\nSECONDLINE${secret}')`);
    const unique = await detailOf(`INSERT INTO owners VALUES (E'FIRSTLINE${secret}\\nSECONDLINE${secret}')`);
    const foreign = await detailOf(`INSERT INTO grants VALUES (E'ab\\r\\n${secret}')`);
    expect([unique, foreign]).toEqual([
      `Key (api_token)=(FIRSTLINE${secret}\nSECONDLINE${secret}) already exists.`,
      `Key (api_token)=(ab\r\n${secret}) is not present in table "owners".`,
    ]);
    expect([stored(unique), stored(foreign)]).toEqual([
      JSON.stringify({ detail: 'Key (api_token)=[REDACTED] already exists.' }),
      JSON.stringify({ detail: 'Key (api_token)=[REDACTED] is not present in table "owners".' }),
    ]);
  }, 60_000);

  it('redacts both keys of an exclusion violation', async () => {
    await sql(`INSERT INTO spans VALUES (textrange('${secret}a', '${secret}m'))`);
    const detail = await detailOf(`INSERT INTO spans VALUES (textrange('${secret}c', '${secret}z'))`);
    expect(detail).toBe(`Key (token_span)=([${secret}c,${secret}z)) conflicts with existing key (token_span)=([${secret}a,${secret}m)).`);
    expect(stored(detail)).toBe(
      JSON.stringify({ detail: 'Key (token_span)=[REDACTED] conflicts with existing key (token_span)=[REDACTED].' }),
    );
  }, 60_000);

  it('keeps the value of a column that is no secret', async () => {
    const detail = await duplicateDetail('titles', 'title', 'Q3 (draft)');
    expect(detail).toBe('Key (title)=(Q3 (draft)) already exists.');
    expect(stored(detail)).toBe(JSON.stringify({ detail }));
  }, 60_000);
});
