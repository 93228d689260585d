import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { AuditService } from '../src/audit';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Issue 24, pipeline depth: under a bulk load the writer keeps up to four batches in flight, each
// at most a quarter of bufferSize (250 of the default 1000), and every entry still lands once.
const CALLERS = 1000;
const ENTRIES = 4000;
const MOST_ROWS_A_COMMIT = 250;

describe('the write pipeline under a bulk load, against a real PostgreSQL', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;

  beforeAll(async () => {
    [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    stderr = new StderrCapture();
    app = await startExampleApp({
      DATABASE_URL: appDb.url(),
      AUDIT_DATABASE_URL: auditDb.url(),
      AUDIT_BUFFER_SIZE: undefined,
      AUDIT_MODE: undefined,
      AUDIT_SPOOL_DIR: undefined,
      SENTRY_DSN: undefined,
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
  }, 30_000);

  it('writes every entry of 1000 callers once, in commits of at most 250 rows, and stays up', async () => {
    const audit = app.get(AuditService);
    stderr.clear();
    let next = 0;
    const caller = async () => {
      while (next < ENTRIES) {
        const n = next++;
        await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: `bulk-${n}`, requestId: `bulk-${n}`, changes: { n } });
      }
    };
    await Promise.all(Array.from({ length: CALLERS }, caller));
    await eventually(() => audit.status().pending === 0, 30_000, 'every entry committed');

    const [{ rows, ids, requests }] = await auditDb.query<{ rows: number; ids: number; requests: number }>(
      `SELECT count(*)::int AS rows, count(DISTINCT id)::int AS ids, count(DISTINCT request_id)::int AS requests
         FROM audit_log WHERE request_id LIKE 'bulk-%'`,
    );
    expect({ rows, ids, requests }).toEqual({ rows: ENTRIES, ids: ENTRIES, requests: ENTRIES });
    const commits = await auditDb.query<{ size: number }>(
      `SELECT count(*)::int AS size FROM audit_log WHERE request_id LIKE 'bulk-%' GROUP BY xmin::text`,
    );
    expect(Math.max(...commits.map((c) => c.size))).toBeLessThanOrEqual(MOST_ROWS_A_COMMIT);
    expect(commits.length).toBeLessThan(ENTRIES / 10);
    expect(audit.status()).toMatchObject({ state: 'up', buffered: 0, pending: 0 });
    // Not one entry took the failure path: no line on stderr.
    expect(stderr.lines).toEqual([]);
  }, 60_000);
});
