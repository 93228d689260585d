import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { Client } from 'pg';
import { AuditQueryService } from '../src/audit';
import { startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md "History across entities": `history()` returns the rows about the entity and the
// rows about another one whose `changes.entities` holds a change of it, each once. The function of
// `audit_log_other_entity_refs_idx` runs in the session inserting a row: a role with a schema of its own
// can put an `=` for text there and set its own search_path (`ALTER ROLE … SET`); with its
// operators and types named as pg_catalog's (AuditOtherEntitiesQualified1767100000000, and AuditOtherEntityRefs1767200000000 for its successor), the rows
// that role inserts are indexed with their other entities all the same.
describe('the other-entities index under the inserting session’s search_path', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const APP = { user: 'ledger_app_role', password: 'ledger-app-pw' };

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' });
    // docs/INTEGRITY.md "Roles" for the app's role, and a schema of its own for its tables.
    await db.query(`CREATE ROLE ${APP.user} LOGIN PASSWORD '${APP.password}'`);
    await db.query(`GRANT INSERT, SELECT ON audit_log TO ${APP.user}`);
    await db.query(`GRANT SELECT ON audit_seal TO ${APP.user}`);
    await db.query(`CREATE SCHEMA app_data AUTHORIZATION ${APP.user}`);
    // A trail of some size, so that a history page reads through the indexes as it does in use.
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome, entity_type, entity_id, changes)
       SELECT gen_random_uuid(), now() - make_interval(secs => i), 'filler_changed', 'success', 'Filler', i::text,
              jsonb_build_object('entities', jsonb_build_array(jsonb_build_object('type', 'Filler', 'id', i::text), jsonb_build_object('type', 'Contract', 'id', 'filler-' || i)))
       FROM generate_series(1, 30000) AS i`,
    );
    await db.query(`ANALYZE audit_log`);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const asApp = async <T>(run: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: db.url('postgres', APP.user, APP.password) });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end();
    }
  };

  const insertAbout = (client: Client, requestId: string) =>
    client.query(
      `INSERT INTO public.audit_log (id, occurred_at, action, outcome, request_id, entity_type, entity_id, changes)
       VALUES (gen_random_uuid(), now(), 'contract_superseded', 'success', $1, 'Contract', 'row-next', $2::jsonb)`,
      [
        requestId,
        JSON.stringify({
          entities: [
            { type: 'Contract', id: 'row-next', op: 'update', fields: { title: ['a', 'b'] } },
            { type: 'Contract', id: 'row-old', op: 'update', fields: { title: ['c', 'd'] } },
          ],
        }),
      ],
    );

  it("returns a row about another entity in the entity's history whatever the writer's search_path", async () => {
    // A row written by the app's role as it is: found in both histories.
    await asApp((client) => insertAbout(client, 'row-before'));
    // With the app's role's own credentials only: an `=` for text in its schema, first on its search_path.
    await asApp(async (client) => {
      await client.query(`CREATE FUNCTION app_data.same(a text, b text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true'`);
      await client.query(`CREATE OPERATOR app_data.= (LEFTARG = text, RIGHTARG = text, FUNCTION = app_data.same)`);
      await client.query(`ALTER ROLE ${APP.user} SET search_path = app_data, pg_catalog, public`);
    });
    // A later session of the role (the module's writer's, had it been running as it) writes the same kind of row.
    await asApp((client) => insertAbout(client, 'row-after'));

    const stored = await db.query<{ request_id: string }>(
      `SELECT request_id FROM audit_log WHERE request_id LIKE 'row-%' ORDER BY request_id`,
    );
    expect(stored.map((row) => row.request_id)).toEqual(['row-after', 'row-before']);

    // Read through the index alone: its entry for the row the role wrote later names the other entity.
    const reader = await db.connect();
    try {
      await reader.query(`SET enable_seqscan = off`);
      const throughIndex = await reader.query<{ request_id: string }>(
        `SELECT request_id FROM audit_log WHERE changes ? 'entities'
           AND audit_log_other_entity_refs(changes -> 'entities', entity_type, entity_id) @> '[{"type":"Contract","id":"row-old"}]'
         ORDER BY request_id`,
      );
      expect(throughIndex.rows.map((row) => row.request_id)).toEqual(['row-after', 'row-before']);
    } finally {
      await reader.end();
    }

    const queries = app.get(AuditQueryService);
    const requestIds = async (id: string) =>
      (await queries.history('Contract', id)).items
        .map((row) => (row as { requestId?: string | null }).requestId)
        .filter((requestId) => requestId?.startsWith('row-'))
        .sort();
    expect({ own: await requestIds('row-next'), other: await requestIds('row-old') }).toEqual({
      own: ['row-after', 'row-before'],
      other: ['row-after', 'row-before'],
    });
  }, 60_000);
});
