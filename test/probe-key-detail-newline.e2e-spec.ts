import { type DatabaseError } from 'pg';
import { AuditEntryNormalizer } from '../src/audit/audit-entry';
import { AUDIT_DEFAULTS } from '../src/audit/audit-options';
import { TestPostgres } from './support/postgres';

// Promise (docs/FAILURES.md, "Safe output"): "PostgreSQL's `Key (token)=(…) already exists`
// whichever of its columns is a secret … its values, which PostgreSQL writes unescaped, run to the
// `)` before ` already exists`, ` is not present`, … or the detail's closing `.`, so a value
// holding `)` goes whole".
//
// Break: PostgreSQL writes a key value unescaped, line breaks included. The reading of a key
// detail's values stops at the first line break (keyValuesEnd in src/audit/redaction.ts), so of a
// secret that holds a newline (a PEM key, a multi-line token, a pasted credential) only the first
// line is replaced: the rest, up to `) already exists.`, is stored (and logged, and sent to
// Sentry) as written.
//
// Observed: `Key (api_token)=[REDACTED]\nSECONDLINEs3cretdonotlog42) already exists.`
//
// Severity: medium (a secret column's value, partly, in every sink; the value must hold a line break).
// Fix guess: a key detail's values run to the `)` before what PostgreSQL writes after them across
// line breaks (the detail is one message; look for KEY_DETAIL_END past '\n'), or, when none is
// found, to the end of the text rather than the end of the line.
describe('probe: a key detail whose secret value holds a line break', () => {
  const database = 'probe_key_detail_newline';
  const secret = 's3cretdonotlog42';
  let db: TestPostgres;
  const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, 64 * 1024);
  const sql = (text: string) => db.query(text, [], database);
  const stored = (detail: string) => JSON.stringify(normalizer.normalize({ action: 'token_saved', changes: { detail } }).record.changes);

  const detailOf = async (statement: string): Promise<string> => {
    const error = await sql(statement).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    return (error as DatabaseError).detail ?? '';
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await sql(`CREATE TABLE owners (api_token text PRIMARY KEY)`);
    await sql(`CREATE TABLE grants (api_token text REFERENCES owners)`);
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('stores no part of a unique or foreign-key violation value that spans two lines', async () => {
    const value = `FIRSTLINE${secret}\nSECONDLINE${secret}`;
    await sql(`INSERT INTO owners VALUES (E'FIRSTLINE${secret}\\nSECONDLINE${secret}')`);
    const unique = await detailOf(`INSERT INTO owners VALUES (E'FIRSTLINE${secret}\\nSECONDLINE${secret}')`);
    const foreign = await detailOf(`INSERT INTO grants VALUES (E'ab\\r\\n${secret}')`);
    expect([unique, foreign]).toEqual([
      `Key (api_token)=(${value}) already exists.`,
      `Key (api_token)=(ab\r\n${secret}) is not present in table "owners".`,
    ]);
    expect([stored(unique), stored(foreign)]).toEqual([
      JSON.stringify({ detail: 'Key (api_token)=[REDACTED] already exists.' }),
      JSON.stringify({ detail: 'Key (api_token)=[REDACTED] is not present in table "owners".' }),
    ]);
  }, 60_000);
});
