// docs/FAILURES.md, "Bounds of the write path": the module's work on the DataSource's pool "holds
// neither a caller nor a pool connection for ever". A pool with every connection taken queues a
// checkout and, once a connection leaves it, opens a new one for it; in a silent network partition
// that opening never ends (`pg` has no deadline of its own when the DataSource sets no
// `connectTimeoutMS`). A checkout of the module on a session with deadlines (`DbSession`: the
// look-ups, the sealer's, upkeep's, retention's and `erase()`'s connections) given up at its
// deadline therefore leaves the pool's queue, and a connection the pool opened for it is
// destroyed: look-ups that waited for a connection of a full pool during a partition leave none
// of its connections behind, and once the network is back the pool serves.
import { Pool } from 'pg';
import { type DbPool, queryWithin } from '../src/audit/db-session';
import { PartitionProxy } from './support/partition-proxy';
import { sleep, TestPostgres } from './support/postgres';

const timeout = (step: 'connect' | 'query', ms: number) => new Error(`${step}: no answer within ${ms} ms`);

/** Whether `work` settles within `ms`; its timer cleared either way. */
async function within(work: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([(work ?? Promise.resolve()).then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `query` answers within 5 s: the app's own query on the pool, as its business code would make it. */
const answers = (query: () => Promise<unknown>) => within(query(), 5000);

describe('checkouts that waited for a connection of a full pool in a silent partition', () => {
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let pool: Pool | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    proxy = await PartitionProxy.start(db.port);
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await within(pool?.end(), 10_000);
    await db?.stop();
  }, 60_000);

  it('look-ups leave none of the pool connections behind once the network is back', async () => {
    pool = new Pool({ connectionString: db.url().replace(`:${db.port}/`, `:${proxy.port}/`), max: 2 });
    pool.on('error', () => undefined);
    await pool.query('SELECT 1');
    proxy.partition();
    // More look-ups than the pool has connections, one every 100 ms, each given 300 ms.
    const lookups = Array.from({ length: 6 }, (_, i) =>
      sleep(i * 100).then(() =>
        queryWithin(pool as unknown as DbPool, 'SELECT 1', [], 300, timeout).then(
          () => 'answered',
          () => 'given up',
        ),
      ),
    );
    expect(await Promise.all(lookups)).toEqual(Array(6).fill('given up'));
    proxy.heal();
    expect(await answers(() => pool!.query('SELECT 1'))).toBe(true);
  }, 60_000);
});
