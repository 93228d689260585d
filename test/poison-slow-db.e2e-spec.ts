import { type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Issue 19, case 5: one entry the table refuses, in a batch of 300, on a database that takes 80 ms
// a statement. Halving the batch until the entry stands alone takes 19 round trips (about 1.5 s),
// more than the batch's write timeout: the split must have a budget of its own, and must not hold
// up the entries logged while it runs.
const WRITE_TIMEOUT_MS = 1000;
const STATEMENT_MS = 80;

describe('one poison entry in 300 on a slow database', () => {
  let db: TestPostgres;
  let app: INestApplicationContext;
  let syncApp: INestApplicationContext | undefined;
  let stderr: StderrCapture;

  const start = async (mode: 'async' | 'sync') => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ mode, auditHttp: false, writeTimeoutMs: WRITE_TIMEOUT_MS, retryBackoffMs: 5000, retryBackoffMaxMs: 5000 }),
      ],
    }).compile();
    return moduleRef.init();
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    stderr = new StderrCapture();
    app = await start('async');
    // Every INSERT statement on the table takes 80 ms; the CHECK refuses one action.
    await db.query(`CREATE FUNCTION slow_statement() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(${STATEMENT_MS / 1000}); RETURN NULL; END $$`);
    await db.query('CREATE TRIGGER slow_insert BEFORE INSERT ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION slow_statement()');
    await db.query("ALTER TABLE audit_log ADD CONSTRAINT no_poison CHECK (action <> 'poison_made')");
  }, 60_000);

  afterAll(async () => {
    await syncApp?.close();
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('the 299 good entries commit, the poison one is quarantined, entries logged meanwhile commit, the service stays up', async () => {
    const audit = app.get(AuditService);
    stderr.clear();
    const started = Date.now();
    const batch = Array.from({ length: 300 }, (_, i) =>
      audit.log({ action: i === 150 ? 'poison_made' : 'nda_created', entityType: 'NDA', entityId: `batch-${i}` }),
    );
    // Traffic goes on while the batch is being split: one entry every 40 ms for 1.6 s.
    const later: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      await sleep(40);
      later.push(audit.log({ action: 'nda_updated', entityType: 'NDA', entityId: `later-${i}` }));
    }
    await Promise.all([...batch, ...later]);
    const splitMs = Date.now() - started;

    const rows = await db.query<{ entity_id: string }>('SELECT entity_id FROM audit_log');
    const ids = new Set(rows.map((r) => r.entity_id));
    const missing = [
      ...Array.from({ length: 300 }, (_, i) => `batch-${i}`).filter((id) => id !== 'batch-150'),
      ...Array.from({ length: 40 }, (_, i) => `later-${i}`),
    ].filter((id) => !ids.has(id));
    expect({ missing, poisonStored: ids.has('batch-150') }).toEqual({ missing: [], poisonStored: false });
    expect(stderr.of('audit.quarantined')).toEqual([expect.objectContaining({ entityId: 'batch-150' })]);
    expect(stderr.of('audit.db_write_failed')).toEqual([]);
    expect(audit.status()).toMatchObject({ state: 'up', buffered: 0, quarantined: 1 });
    // The split really outlasted the write timeout, or this proves nothing.
    expect(splitMs).toBeGreaterThan(WRITE_TIMEOUT_MS);
  }, 30_000);

  it('sync mode, two poison entries (about 3 s of split): each request is answered within the write timeout; every good entry is committed once', async () => {
    await app.close();
    syncApp = await start('sync');
    const audit = syncApp.get(AuditService);
    stderr.clear();
    const answeredIn: number[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        audit
          .log({ action: i === 7 || i === 250 ? 'poison_made' : 'nda_created', entityType: 'NDA', entityId: `sync-${i}` })
          .then(() => answeredIn.push(Date.now() - started)),
      ),
    );
    // The write timeout, and the ring's append, on a busy machine.
    expect(Math.max(...answeredIn)).toBeLessThan(WRITE_TIMEOUT_MS + 500);
    await eventually(
      () => audit.status().quarantined === 2 && audit.status().buffered === 0,
      10_000,
      'the split ended and its copies flushed',
    );
    const rows = await db.query<{ entity_id: string; n: string }>(
      "SELECT entity_id, count(*) AS n FROM audit_log WHERE entity_id LIKE 'sync-%' GROUP BY entity_id",
    );
    expect(rows).toHaveLength(298);
    expect(rows.filter((r) => r.n !== '1')).toEqual([]);
    expect(stderr.of('audit.db_write_failed')).toEqual([]);
    expect(audit.status().state).toBe('up');
  }, 30_000);
});
