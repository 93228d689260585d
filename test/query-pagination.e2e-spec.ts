import { type INestApplication } from '@nestjs/common';
import fc from 'fast-check';
import { type Server } from 'node:http';
import { AuditQueryService } from '../src/audit';
import { TestPostgres } from './support/postgres';
import { seed, startQueryApp } from './support/query-app';

/** A row's key as the trail orders it: microseconds since the epoch, then id. */
interface Key {
  us: number;
  id: string;
}

const BASE_US = Date.parse('2026-11-01T00:00:00Z') * 1000;
const compare = (a: Key, b: Key) => a.us - b.us || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
// Few distinct instants, some sharing a millisecond, some a microsecond: ties are the hard part.
const key = fc.record({ us: fc.integer({ min: 0, max: 3000 }).map((n) => BASE_US + n * 7), id: fc.uuid().map((id) => id.toLowerCase()) });
const iso = (us: number) => `${new Date(Math.floor(us / 1000)).toISOString().slice(0, -1)}${String(us % 1000).padStart(3, '0')}Z`;

// The pagination property against real PostgreSQL: walking an entity's history page by page,
// with rows inserted between pages (older, newer and tied with the page boundary), returns every
// row that was there at the start and every row inserted behind the cursor exactly once, in order.
describe('keyset pagination', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let run = 0;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('never duplicates or skips an entry when rows are inserted between pages', async () => {
    const queries = app.get(AuditQueryService);
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(key, { minLength: 1, maxLength: 40, selector: (k) => k.id }),
        fc.array(fc.array(key, { maxLength: 4 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 7 }),
        async (initial, insertsBetweenPages, limit) => {
          const entityId = `paged-${run}`;
          // Shrinking replays the same values: each run's ids get a prefix of their own (order within the run kept).
          const prefix = (run++).toString(16).padStart(8, '0');
          const own = (k: Key): Key => ({ us: k.us, id: `${prefix}${k.id.slice(8)}` });
          initial = initial.map(own);
          insertsBetweenPages = insertsBetweenPages.map((keys) => keys.map(own));
          const insert = (keys: readonly Key[]) =>
            seed(
              db,
              keys.map((k) => ({ id: k.id, occurredAt: iso(k.us), entityId })),
            );
          const present = new Map(initial.map((k) => [k.id, k]));
          await insert(initial);
          const expected = new Set(present.keys());
          const seen: Key[] = [];
          let cursor: string | undefined;
          for (let page = 0; ; page += 1) {
            const result = await queries.history('NDA', entityId, { cursor, limit });
            seen.push(...result.items.map((r) => present.get(r.id) as Key));
            if (!result.nextCursor) break;
            cursor = result.nextCursor;
            // Rows behind the last one returned must come later; rows ahead of it are newer than the walk.
            const fresh = [...new Map((insertsBetweenPages[page] ?? []).filter((k) => !present.has(k.id)).map((k) => [k.id, k])).values()];
            const last = seen[seen.length - 1];
            for (const k of fresh) {
              present.set(k.id, k);
              if (compare(k, last) < 0) expected.add(k.id);
            }
            await insert(fresh);
          }
          expect(new Set(seen.map((k) => k.id)).size).toBe(seen.length);
          for (let i = 1; i < seen.length; i += 1) expect(compare(seen[i - 1], seen[i])).toBeGreaterThan(0);
          expect(seen.filter((k) => expected.has(k.id)).length).toBe(expected.size);
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);
});
