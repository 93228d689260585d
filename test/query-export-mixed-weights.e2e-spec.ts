import { type INestApplication } from '@nestjs/common';
import { get as httpGet, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TestPostgres } from './support/postgres';
import { startQueryApp } from './support/query-app';

// docs/GUIDE.md "Exports": memory holds about one batch of ~4 Mi characters whatever the rows.
// Each batch is cut from the weights of the rows it takes, not guessed from the batch before it: an
// export whose small rows come first and rows near maxEntryBytes after them (a quiet month, then a
// bulk import of large documents) holds no more than an export of large rows alone (under 64 MB,
// as test/query-export holds), where a batch sized by the small rows held 2000 large ones (115 MB).
const SMALL = 2200;
const LARGE = 2000;

/** A full garbage collection, then the bytes still held. */
function retainedMb(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return (heapUsed + arrayBuffers) / 1024 ** 2;
}

describe('an export of small rows followed by rows near maxEntryBytes', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, changes)
       SELECT gen_random_uuid(), timestamptz '2026-09-01' + g * interval '1 second', 'nda_updated', 'MIX', 'small-' || g, 'success',
         jsonb_build_object('n', g)
       FROM generate_series(1, ${SMALL}) AS g`,
    );
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, changes)
       SELECT gen_random_uuid(), timestamptz '2026-09-02' + g * interval '1 second', 'bulk_imported', 'MIX', 'large-' || g, 'success',
         jsonb_build_object('n', g, 'note', $1::text)
       FROM generate_series(1, ${LARGE}) AS g`,
      ['y'.repeat(60_000)],
    );
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('holds a few batches of about 4 MB when the rows grow large mid-export', async () => {
    const { port } = app.getHttpServer().address() as AddressInfo;
    const baseline = retainedMb();
    const retained: number[] = [];
    let lines = 0;
    let rest = '';
    await new Promise<void>((resolve, reject) => {
      httpGet(
        { port, host: '127.0.0.1', path: '/audit/export?entityType=MIX', headers: { 'x-auditor': 'yes' } },
        (res: IncomingMessage) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            const parts = (rest + chunk).split('\n');
            rest = parts.pop() as string;
            lines += parts.length;
            if (lines > SMALL && parts.length > 0 && lines % 250 < parts.length) retained.push(retainedMb() - baseline);
          });
          res.on('end', resolve);
          res.on('error', reject);
        },
      ).on('error', reject);
    });
    expect(lines).toBe(SMALL + LARGE);
    // 120 MB of large rows, never held at once: each batch stops at its weight budget.
    expect(Math.max(...retained)).toBeLessThan(64);
  }, 120_000);
});
