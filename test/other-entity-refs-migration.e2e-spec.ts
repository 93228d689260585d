import { type INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditOtherEntityRefs1767200000000, AuditQueryService } from '../src/audit';
import { monthStart, startPartitionsApp } from './support/partitions';
import { TestPostgres } from './support/postgres';

// AuditOtherEntityRefs1767200000000 (docs/GUIDE.md "History across entities", docs/RUNBOOK.md
// section 14): the history page's index of other entities narrowed to their type and id. On a
// trail written before it, an entity's history is what it was (its own rows, and the rows of other
// entities whose `changes.entities` names it, a numeric id stored as a number or as a string);
// `audit_log_other_entities_idx` and its function are gone; every partition's new index is
// attached, including those the partition upkeep makes afterwards; inside TypeORM's migration
// transaction and outside one (CONCURRENTLY, an invalid leftover of an interrupted build built
// again); `down()` gives the old index back.
describe('the migration that narrows the history index to type and id', () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 60_000);

  afterAll(async () => {
    await db?.stop();
  });

  const BEFORE = AUDIT_MIGRATIONS.slice(0, AUDIT_MIGRATIONS.indexOf(AuditOtherEntityRefs1767200000000));

  /** Runs `migrations` on database `name` with TypeORM's transaction mode `mode`. */
  const migrate = async (name: string, migrations: readonly unknown[], mode: 'all' | 'none' = 'all') => {
    const source = new DataSource({
      type: 'postgres',
      url: db.url(name),
      migrations: migrations as never,
      migrationsTableName: 'audit_migrations',
      migrationsTransactionMode: mode,
    });
    await source.initialize();
    try {
      await source.runMigrations();
    } finally {
      await source.destroy();
    }
  };

  /** Rows written before the migration: an NDA's with its contacts, in two months' partitions. */
  const ROWS: { request: string; type: string; id: string; entities: unknown; daysAgo: number }[] = [
    {
      request: 'r-nda',
      type: 'NDA',
      id: 'n-1',
      daysAgo: 1,
      entities: [
        { type: 'NDA', id: 'n-1', op: 'insert', fields: { title: [null, 'Supply'] } },
        { type: 'Contact', id: 'c-1', op: 'insert', fields: { email: [null, 'a@example.com'] } },
        { type: 'Contact', id: 42, op: 'insert', fields: { email: [null, 'b@example.com'] } },
      ],
    },
    {
      request: 'r-old',
      type: 'NDA',
      id: 'n-2',
      daysAgo: 40,
      entities: [
        { type: 'NDA', id: 'n-2', op: 'update', fields: { title: ['a', 'b'] } },
        { type: 'Contact', id: '42', op: 'update', fields: { name: ['x', 'y'] } },
      ],
    },
    { request: 'r-contact', type: 'Contact', id: 'c-1', daysAgo: 2, entities: [{ type: 'Contact', id: 'c-1', op: 'update', fields: {} }] },
    { request: 'r-plain', type: 'Contact', id: '42', daysAgo: 3, entities: undefined },
  ];

  /** What each entity's history holds (request ids, newest first), as a reader of the trail knows it. */
  const EXPECTED: Record<string, string[]> = {
    'NDA n-1': ['r-nda'],
    'NDA n-2': ['r-old'],
    'Contact c-1': ['r-nda', 'r-contact'],
    'Contact 42': ['r-nda', 'r-plain', 'r-old'],
  };

  const trailBefore = async (name: string) => {
    await db.createDatabase(name);
    await migrate(name, BEFORE);
    for (const row of ROWS) {
      await db.query(
        `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, request_id, changes, recorded_at)
         VALUES (gen_random_uuid(), now() - $1 * interval '1 day', 'changed', $2, $3, 'success', $4, $5::jsonb, now())`,
        [row.daysAgo, row.type, row.id, row.request, row.entities ? JSON.stringify({ entities: row.entities }) : null],
        name,
      );
    }
    // Rows of other entities, so that the planner has a table to choose an index for.
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, changes, recorded_at)
       SELECT gen_random_uuid(), now() - g * interval '1 minute', 'filled', 'Filler', g::text, 'success',
         jsonb_build_object('entities', jsonb_build_array(jsonb_build_object('type', 'Filler', 'id', g::text), jsonb_build_object('type', 'Other', 'id', g))), now()
       FROM generate_series(1, 3000) AS g`,
      [],
      name,
    );
    await db.query(`ANALYZE audit_log`, [], name);
  };

  /** Each entity's history through the module (request ids, newest first). */
  const histories = async (app: INestApplication) => {
    const queries = app.get(AuditQueryService);
    const out: Record<string, string[]> = {};
    for (const key of Object.keys(EXPECTED)) {
      const [type, id] = key.split(' ');
      out[key] = (await queries.history(type, id)).items
        .map((row) => (row as { requestId?: string | null }).requestId ?? '')
        .filter((request) => request.startsWith('r-'));
    }
    return out;
  };

  /** The trail's partitions, and those whose index is attached to the parent index `index` (with whether the parent's is valid). */
  const indexState = async (name: string, index: string) => {
    const [row] = await db.query<{ exists: boolean; valid: boolean | null; parts: string[]; attached: string[] }>(
      `SELECT to_regclass($1) IS NOT NULL AS exists,
         (SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)) AS valid,
         array(SELECT c.relname::text FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
               WHERE h.inhparent = 'audit_log'::regclass AND c.relkind = 'r' ORDER BY 1) AS parts,
         array(SELECT t.relname::text FROM pg_inherits h JOIN pg_index x ON x.indexrelid = h.inhrelid JOIN pg_class t ON t.oid = x.indrelid
               WHERE h.inhparent = to_regclass($1) ORDER BY 1) AS attached`,
      [index],
      name,
    );
    return row;
  };

  const functionExists = async (name: string, fn: string) =>
    (await db.query<{ exists: boolean }>(`SELECT to_regprocedure($1) IS NOT NULL AS exists`, [`${fn}(jsonb, text, text)`], name))[0].exists;

  /** The plan of a history page's lookup of a contact on other rows, sequential scans off. */
  const plan = async (name: string) => {
    const client = await db.connect(name);
    try {
      await client.query('SET enable_seqscan = off');
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT id FROM audit_log WHERE changes ? 'entities'
           AND audit_log_other_entity_refs(changes -> 'entities', entity_type, entity_id) @> '[{"type":"Contact","id":"c-1"}]'`,
      );
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      await client.end();
    }
  };

  it('keeps the history of rows written before it, replaces the index, and new partitions get theirs', async () => {
    await trailBefore('in_tx');
    expect(await indexState('in_tx', 'audit_log_other_entities_idx')).toMatchObject({ exists: true, valid: true });
    const app = await startPartitionsApp(db.url('in_tx'));
    try {
      expect(await histories(app)).toEqual(EXPECTED);
      const refs = await indexState('in_tx', 'audit_log_other_entity_refs_idx');
      expect(refs.valid).toBe(true);
      expect(refs.attached).toEqual(refs.parts);
      expect((await indexState('in_tx', 'audit_log_other_entities_idx')).exists).toBe(false);
      expect(await functionExists('in_tx', 'audit_log_other_entities')).toBe(false);
      expect(await plan('in_tx')).toMatch(/_refs_idx/);

      // The partition upkeep's new months: each gets the index, and a row there is in the history.
      await db.query(`SELECT audit_log_create_partitions(14)`, [], 'in_tx');
      const later = await indexState('in_tx', 'audit_log_other_entity_refs_idx');
      expect(later.parts.length).toBeGreaterThan(refs.parts.length);
      expect(later.attached).toEqual(later.parts);
      expect(later.valid).toBe(true);
      await db.query(
        `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, request_id, changes, recorded_at)
         VALUES (gen_random_uuid(), $1, 'changed', 'NDA', 'n-9', 'success', 'r-later', $2::jsonb, now())`,
        [
          new Date(monthStart(13).getTime() + 86_400_000),
          JSON.stringify({ entities: [{ type: 'Contact', id: 42, op: 'delete', fields: {} }] }),
        ],
        'in_tx',
      );
      expect((await histories(app))['Contact 42']).toEqual(['r-later', ...EXPECTED['Contact 42']]);
    } finally {
      await app.close();
    }
  }, 120_000);

  it('builds CONCURRENTLY outside a transaction, an interrupted build built again, and down() gives the old index back', async () => {
    await trailBefore('no_tx');
    const [first] = (await indexState('no_tx', 'audit_log_other_entities_idx')).parts;
    // What an interrupted CONCURRENTLY build of the partition's index leaves: an index marked invalid.
    await db.query(
      `CREATE FUNCTION audit_log_other_entity_refs(entities jsonb, own_type text, own_id text) RETURNS jsonb
       LANGUAGE sql IMMUTABLE AS $$ SELECT '[]'::jsonb $$`,
      [],
      'no_tx',
    );
    await db.query(
      `CREATE INDEX ${first}_refs_idx ON ${first} USING gin (audit_log_other_entity_refs(changes -> 'entities', entity_type, entity_id) jsonb_path_ops)
       WITH (fastupdate = off) WHERE changes ? 'entities'`,
      [],
      'no_tx',
    );
    await db.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = '${first}_refs_idx'::regclass`, [], 'no_tx');

    await migrate('no_tx', AUDIT_MIGRATIONS, 'none');
    const refs = await indexState('no_tx', 'audit_log_other_entity_refs_idx');
    expect(refs.valid).toBe(true);
    expect(refs.attached).toEqual(refs.parts);
    expect((await indexState('no_tx', 'audit_log_other_entities_idx')).exists).toBe(false);
    expect(await plan('no_tx')).toMatch(/_refs_idx/);
    const app = await startPartitionsApp(db.url('no_tx'));
    try {
      expect(await histories(app)).toEqual(EXPECTED);
    } finally {
      await app.close();
    }

    const source = new DataSource({
      type: 'postgres',
      url: db.url('no_tx'),
      migrations: [...AUDIT_MIGRATIONS],
      migrationsTableName: 'audit_migrations',
    });
    await source.initialize();
    try {
      await source.undoLastMigration();
    } finally {
      await source.destroy();
    }
    const old = await indexState('no_tx', 'audit_log_other_entities_idx');
    expect(old.valid).toBe(true);
    expect(old.attached).toEqual(old.parts);
    expect((await indexState('no_tx', 'audit_log_other_entity_refs_idx')).exists).toBe(false);
    expect(await functionExists('no_tx', 'audit_log_other_entity_refs')).toBe(false);
    const [{ found }] = await db.query<{ found: string[] }>(
      `SELECT array(SELECT request_id FROM audit_log WHERE changes ? 'entities'
         AND audit_log_other_entities(changes -> 'entities', entity_type, entity_id) @> '[{"type":"Contact","id":"c-1"}]' ORDER BY 1) AS found`,
      [],
      'no_tx',
    );
    expect(found).toEqual(['r-nda']);
  }, 120_000);
});
