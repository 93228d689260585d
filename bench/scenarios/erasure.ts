import { randomUUID } from 'node:crypto';
import { AuditEntryNormalizer, type AuditEntry } from '../../src/audit/audit-entry';
import { entrySigner, resolveEntryKeys } from '../../src/audit/integrity/entry-auth';
import { personalSplitter } from '../../src/audit/privacy/personal-values';
import { resolvePrivacyOptions } from '../../src/audit/privacy/privacy-options';
import { median } from '../support/load';
import { freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';

/** Rows in `audit_log`, and the rows of the one user erased. */
export interface ErasureSizes {
  rows: number;
  userRows: number;
}

const ENTRY_KEYS = [{ id: 'bench', secret: 'a-bench-entry-key-of-at-least-32-characters' }];

/**
 * Scenario: `audit_log_erase` of one user's `sizes.userRows` rows in a table of `sizes.rows`
 * rows written with commitments (filled by SQL, a thousand users besides, every row with an IP and
 * a user agent), through the index on `user_id`; then the CPU cost of the commitments at birth:
 * `normalize()` per entry with the entry key, without and with the `privacy` option.
 *
 * @example
 * const figures = await erasure(pg, { rows: 10_000_000, userRows: 10_000 }, details);
 */
export async function erasure(pg: TestPostgres, sizes: ErasureSizes, details: Record<string, unknown>): Promise<Figure[]> {
  await freshAuditDatabase(pg, 'erasure');
  const fillStarted = performance.now();
  // Every `userRows`-th row, spread over the whole table, is the erased user's.
  const every = Math.max(1, Math.floor(sizes.rows / sizes.userRows));
  await pg.query(
    `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, changes, personal, commitments)
     SELECT gen_random_uuid(), now() - make_interval(secs => $1::int - i), 'profile_updated', 'Profile', 'p-' || (i % 50000),
       CASE WHEN i % $2::int = 0 AND i / $2::int <= $3::int THEN 'erased-user' ELSE 'user-' || (i % 1000) END, 'success', '203.0.113.' || (i % 250),
       'Mozilla/5.0', '{"plan": "pro"}', '{"salt":"' || md5(i::text) || md5(i::text) || '","values":[[["changes","body","email"],"\\"a@b.c\\""]]}',
       '[[["user_id"],"x"],[["ip"],"y"],[["user_agent"],"z"],[["changes","body","email"],"w"]]'
     FROM generate_series(1, $1::int) AS i`,
    [sizes.rows, every, sizes.userRows],
    'erasure',
  );
  await pg.query('ANALYZE audit_log', [], 'erasure');
  const fillS = Math.round((performance.now() - fillStarted) / 1000);
  const started = performance.now();
  const [{ n }] = await pg.query<{ n: string }>(
    `SELECT count(*) AS n FROM audit_log_erase('erased-user', NULL, NULL, $1::uuid, false) WHERE state = 'erased'`,
    [randomUUID()],
    'erasure',
  );
  const eraseMs = performance.now() - started;
  const birth = birthCost();
  details.erasure = { ...sizes, fillS, erasedRows: Number(n), eraseMs, ...birth };
  return [
    {
      key: 'erasure.eraseMs',
      value: Math.round(eraseMs),
      unit: 'ms',
      target: { op: '<=', value: 2000 },
      note: `${n} rows of ${sizes.rows}`,
    },
    {
      key: 'erasure.commitmentCost',
      value: Math.round((birth.privacyMicros / birth.plainMicros - 1) * 1000) / 10,
      unit: '% of normalize()',
      note: `normalize() ${birth.plainMicros.toFixed(1)} → ${birth.privacyMicros.toFixed(1)} µs CPU per entry (entry key on)`,
    },
  ];
}

/** CPU time of normalize() per entry, in µs, with the entry key, without and with the privacy option (median of 5 passes). */
function birthCost(): { plainMicros: number; privacyMicros: number } {
  const sign = entrySigner(resolveEntryKeys(ENTRY_KEYS));
  const plain = new AuditEntryNormalizer([], 64 * 1024, sign);
  const privacy = new AuditEntryNormalizer(
    [],
    64 * 1024,
    sign,
    personalSplitter(resolvePrivacyOptions({ personalData: ['changes.body.email'] })),
  );
  const entries: AuditEntry[] = Array.from({ length: 20_000 }, (_, i) => ({
    action: 'profile_updated',
    entityType: 'Profile',
    entityId: `p-${i}`,
    userId: `user-${i % 1000}`,
    ip: '203.0.113.7',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64)',
    changes: { body: { email: `u${i}@example.com`, plan: 'pro' } },
    metadata: { statusCode: 200, durationMs: 12.5 },
  }));
  const pass = (normalizer: AuditEntryNormalizer) => {
    const begun = process.cpuUsage();
    for (const entry of entries) normalizer.normalize(entry);
    const { user, system } = process.cpuUsage(begun);
    return (user + system) / entries.length;
  };
  const times = { plain: [] as number[], privacy: [] as number[] };
  for (let i = 0; i < 5; i++) {
    times.plain.push(pass(plain));
    times.privacy.push(pass(privacy));
  }
  return { plainMicros: median(times.plain), privacyMicros: median(times.privacy) };
}
