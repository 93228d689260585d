import { Client } from 'pg';
import { trustContextSql } from '../src/audit/integrity/seal-trust';
import { createAuditDatabase } from './support/audit-database';
import { TestPostgres } from './support/postgres';

// A trail sealed every 5 s has 6M seals a year. What runs before each seal (the sealer's
// trustContextSql) and on each INSERT into audit_seal (the link trigger) must read a few pages
// whatever the chain's length, also on a chain with no signature or no entry boundary, where a
// read ordered by seq alone walks every seal. Issue 20.

const SEALS = 40_000;

/** Shared buffers (hit or read) a statement touched, triggers included, from EXPLAIN (ANALYZE, BUFFERS). */
async function buffersOf(client: Client, sql: string): Promise<number> {
  const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: Record<string, number> }] }>(
    `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`,
  );
  const plan = rows[0]['QUERY PLAN'][0].Plan;
  return plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
}

/** The statements that touched more pages than a few index lookups take, with their counts. */
function overBudget(buffers: Record<string, number>): [string, number][] {
  return Object.entries(buffers).filter(([, count]) => count >= FEW_PAGES);
}

/** Pages a few index lookups and one row's insert touch, whatever the chain's length. */
const FEW_PAGES = 40;

/**
 * Appends seals `from`..`to` directly (the link trigger off for the bulk load): signed from
 * `signedFrom` on, with an entry boundary from `boundaryFrom` on (null: never).
 */
async function appendSeals(
  client: Client,
  from: number,
  to: number,
  signedFrom: number | null,
  boundaryFrom: number | null,
): Promise<void> {
  await client.query(`SET session_replication_role = replica`);
  await client.query(
    `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from)
     SELECT g, 1, '\\x00', 1, '00000000-0000-7000-8000-000000000000', 1, 0, '\\x00', '\\x', now(), '\\x00',
       CASE WHEN g >= $3 THEN 'k' END, CASE WHEN g >= $3 THEN '\\x01'::bytea END, CASE WHEN g >= $4 THEN 1 END
     FROM generate_series($1::bigint, $2::bigint) AS g`,
    [from, to, signedFrom ?? Number.MAX_SAFE_INTEGER, boundaryFrom ?? Number.MAX_SAFE_INTEGER],
  );
  await client.query(`SET session_replication_role = origin`);
  await client.query(`ANALYZE audit_seal`);
}

/**
 * Buffers of one seal inserted after `after` (unsigned, no boundary, unless given), rolled back;
 * measured on the second try, when the session has the trigger's plans and the catalog cached.
 */
async function insertBuffers(client: Client, after: number, signed: boolean, boundary: boolean): Promise<number> {
  const insert =
    `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from) ` +
    `VALUES (${after + 1}, 1, '\\x00', 1, '00000000-0000-7000-8000-000000000000', 1, 0, '\\x00', '\\x', now(), '\\x00', ` +
    `${signed ? `'k', '\\x01'` : 'NULL, NULL'}, ${boundary ? '1' : 'NULL'})`;
  let buffers = 0;
  for (let i = 0; i < 2; i++) {
    await client.query('BEGIN');
    try {
      buffers = await buffersOf(client, insert);
    } finally {
      await client.query('ROLLBACK');
    }
  }
  return buffers;
}

describe('seal-trust reads on a long chain (issue 20)', () => {
  let db: TestPostgres;
  let client: Client | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 60_000);

  afterEach(async () => {
    await client?.end();
    client = undefined;
  });

  afterAll(async () => {
    await db?.stop();
  });

  async function chain(name: string, signedFrom: number | null, boundaryFrom: number | null): Promise<Client> {
    await createAuditDatabase(db, name, { user: `writer_${name}`, password: 'writer-pw' });
    client = new Client({ connectionString: db.url(name) });
    await client.connect();
    await appendSeals(client, 1, SEALS, signedFrom, boundaryFrom);
    return client;
  }

  it('reads a few pages on a chain with neither signatures nor an entry boundary', async () => {
    const c = await chain('unsigned', null, null);
    const buffers = {
      trustContext: await buffersOf(c, trustContextSql('audit_seal')),
      unsignedInsert: await insertBuffers(c, SEALS, false, false),
    };
    expect(overBudget(buffers)).toEqual([]);
  });

  it('reads a few pages on a signed chain without a boundary, and on one whose boundary came late', async () => {
    const c = await chain('late', SEALS / 2, null);
    const noBoundary = {
      trustContext: await buffersOf(c, trustContextSql('audit_seal')),
      signedInsert: await insertBuffers(c, SEALS, true, false),
    };
    await appendSeals(c, SEALS + 1, SEALS + 1, SEALS / 2, SEALS + 1);
    const lateBoundary = {
      trustContext: await buffersOf(c, trustContextSql('audit_seal')),
      signedInsert: await insertBuffers(c, SEALS + 1, true, true),
    };
    expect({ noBoundary: overBudget(noBoundary), lateBoundary: overBudget(lateBoundary) }).toEqual({ noBoundary: [], lateBoundary: [] });
  });

  it('still counts the buffers it reads (the measure can fail)', async () => {
    const c = await chain('counted', null, null);
    expect(await buffersOf(c, `SELECT count(*) FROM audit_seal`)).toBeGreaterThan(SEALS / 1000);
  });
});
