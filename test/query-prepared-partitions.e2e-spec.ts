import { type INestApplication } from '@nestjs/common';
import { AuditQueryService } from '../src/audit';
import { startSealingApp } from './support/integrity';
import { monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';

// A page search is prepared once per read connection, and PostgreSQL keeps its plan after a few
// reads. The plan names the monthly partitions it reads: one dropped by retention, or one made
// since, must not leave a read failing or missing rows on a connection that prepared it before.
describe('prepared page reads across partitions dropped and made', () => {
  const database = 'prepared_reads';
  let db: TestPostgres;
  let app: INestApplication;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const insertAgo = (k: number, id: string) =>
    sql(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome)
       VALUES ($1, $2::timestamptz + interval '2 hours', 'nda_updated', 'NDA', 'e-1', 'success')`,
      [id, monthsAgo(k).start],
    );
  const history = async () => (await app.get(AuditQueryService).history('NDA', 'e-1')).items.map((row) => row.id);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 3);
    app = await startSealingApp(db.url(database), { readConnections: 2, maxExports: 1, integrity: { enabled: false } });
    await insertAgo(3, '00000000-0000-4000-8000-000000000003');
    await insertAgo(2, '00000000-0000-4000-8000-000000000002');
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('reads the same rows as the table holds, before and after a partition goes and a row comes', async () => {
    // More reads than PostgreSQL plans one by one before it keeps a generic plan (5).
    for (let i = 0; i < 8; i++) {
      expect(await history()).toEqual(['00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000003']);
    }
    await sql(`ALTER TABLE audit_log DETACH PARTITION ${partitionAgo(3)}; DROP TABLE ${partitionAgo(3)}`);
    expect(await history()).toEqual(['00000000-0000-4000-8000-000000000002']);
    await insertAgo(1, '00000000-0000-4000-8000-000000000001');
    expect(await history()).toEqual(['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002']);
  }, 60_000);
});
