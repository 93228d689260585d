// Promise (docs/FAILURES.md, "Safe output"): "PostgreSQL's key detail, `Key (token)=(…) already
// exists`, whichever of its columns is a secret. A column may be quoted … or inside an index
// expression (`Key (lower(token))=(…)`)." and redaction.ts: "a quoted one … or one in an
// expression (`lower(token)`, `(data ->> 'token')`)".
// Break: the key detail's column list is looked for at most 256 characters back from its `)=(`.
// PostgreSQL writes an expression index's columns deparsed, with their casts: a unique index of a
// JSON document's keys (`(payload ->> 'api_token')` and six more keys), or a composite unique
// index of long column names whose last part is an expression (`lower(…)`), passes 256
// characters. The list is then not read, and nothing else redacts the values. (A plain list of
// column names as long is redacted: tried, it held.)
// Observed: the secret value of `api_token` is stored as PostgreSQL wrote it, in the row's text
// (and so on stderr and in Sentry, which read the same normalized entry).
// Severity: medium (a secret stored in the trail; document stores with expression indexes over
// several keys are common). Fix guess: find the `Key (` / `existing key (` opening before `)=(`
// without a fixed 256-character bound (PostgreSQL caps an index at 32 columns, so the list is
// bounded by the detail itself: scan back to the opening that follows `Key ` or `key `, still
// never past the previous detail, which keeps the reading linear).
import { type DatabaseError } from 'pg';
import { AuditEntryNormalizer } from '../src/audit/audit-entry';
import { AUDIT_DEFAULTS } from '../src/audit/audit-options';
import { TestPostgres } from './support/postgres';

describe('a PostgreSQL key detail with a column list longer than 256 characters', () => {
  const database = 'probe_long_key_list';
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
    await sql('CREATE TABLE documents (payload jsonb)');
    await sql(
      `CREATE UNIQUE INDEX documents_key ON documents (
        (payload ->> 'api_token'), (payload ->> 'organisation_identifier'), (payload ->> 'deployment_environment'),
        (payload ->> 'service_account_identifier'), (payload ->> 'region_identifier'), (payload ->> 'tenant_identifier'),
        (payload ->> 'integration_partner'))`,
    );
    await sql(
      `CREATE TABLE credentials (api_token text, organisation_identifier_for_billing text, deployment_environment_name_label text, service_account_identifier_value text, region_identifier_of_the_primary text, tenant_identifier_of_the_account text, integration_partner_name_label text, contract_reference_of_the_integration text, retention_policy_of_the_account text)`,
    );
    await sql(
      `CREATE UNIQUE INDEX credentials_key ON credentials (api_token, organisation_identifier_for_billing, deployment_environment_name_label,
        service_account_identifier_value, region_identifier_of_the_primary, tenant_identifier_of_the_account, integration_partner_name_label,
        contract_reference_of_the_integration, lower(retention_policy_of_the_account))`,
    );
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('redacts the values of a unique index over seven keys of a JSON document, one of them a token', async () => {
    const document = JSON.stringify({
      api_token: secret,
      organisation_identifier: 'acme',
      deployment_environment: 'production',
      service_account_identifier: 'svc-1',
      region_identifier: 'eu-west-1',
      tenant_identifier: 't-1',
      integration_partner: 'partner',
    });
    await sql(`INSERT INTO documents VALUES ('${document}')`);
    const detail = await detailOf(`INSERT INTO documents VALUES ('${document}')`);
    // What PostgreSQL wrote: the column list is the index's expressions, deparsed.
    expect(detail).toContain(`(payload ->> 'api_token'::text)`);
    expect(detail).toContain(secret);
    expect(detail.indexOf(')=(') - detail.indexOf('Key (')).toBeGreaterThan(256);
    expect(stored(detail)).not.toContain(secret);
  });

  it('redacts the values of a unique index of eight columns and an expression, the first column a token', async () => {
    const insert = `INSERT INTO credentials VALUES ('${secret}', 'acme', 'production', 'svc-1', 'eu-west-1', 't-1', 'partner', 'c-1', 'r-1')`;
    await sql(insert);
    const detail = await detailOf(insert);
    expect(detail).toContain('Key (api_token, organisation_identifier');
    expect(detail).toContain(secret);
    expect(detail.indexOf(')=(') - detail.indexOf('Key (')).toBeGreaterThan(256);
    expect(stored(detail)).not.toContain(secret);
  });
});
