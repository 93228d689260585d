import { randomUUID } from 'node:crypto';
import { AuditEntryNormalizer, type AuditEntry } from '../../src/audit/audit-entry';
import { entrySigner, resolveEntryKeys } from '../../src/audit/integrity/entry-auth';
import { personalSplitter } from '../../src/audit/privacy/personal-values';
import { resolvePrivacyOptions } from '../../src/audit/privacy/privacy-options';
import { auditEntries } from '../support/entries';
import { median } from '../support/load';
import { countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';
import { moduleLog } from './throughput';

/** Rows in `audit_log`, the rows of the one user erased, and the rounds of the `log()` A/B. */
export interface ErasureSizes {
  rows: number;
  userRows: number;
  logRounds: number;
}

/** The personal paths of the `privacy` variant: the contacts' e-mail addresses of the bench's entries. */
const PRIVACY = { personalData: ['changes.body.contacts'] };
const LOG_ENTRIES = 30_000;
const WARM = 2000;

const ENTRY_KEYS = [{ id: 'bench', secret: 'a-bench-entry-key-of-at-least-32-characters' }];

/**
 * Scenario: `audit_log_erase` of one user's `sizes.userRows` rows in a table of `sizes.rows`
 * rows written with commitments (filled by SQL in two sessions, a thousand users besides, every
 * row with an IP and a user agent), through the index on `user_id`; then the commitments' cost to
 * `log()` throughput (as in `throughput`, 1000 callers, 30 000 entries into a fresh table per run),
 * without and with the `privacy` option, in alternating order for `sizes.logRounds` rounds in this
 * process (`erasure.commitmentCost` = 1 − with/without, the median of the rounds); and the CPU of
 * `normalize()` per entry with the entry key, without and with `privacy`.
 *
 * @example
 * const figures = await erasure(pg, { rows: 10_000_000, userRows: 10_000, logRounds: 5 }, details);
 */
export async function erasure(pg: TestPostgres, sizes: ErasureSizes, details: Record<string, unknown>): Promise<Figure[]> {
  const logRuns = await commitmentCost(pg, sizes.logRounds);
  await freshAuditDatabase(pg, 'erasure');
  await pg.query("ALTER SYSTEM SET max_wal_size = '8GB'");
  await pg.query('SELECT pg_reload_conf()');
  const fillStarted = performance.now();
  // Every `userRows`-th row, spread over the whole table, is the erased user's; as many, halfway between, the explained user's.
  const every = Math.max(1, Math.floor(sizes.rows / sizes.userRows));
  const fill = (from: number, to: number) =>
    pg.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, changes, personal, commitments)
       SELECT gen_random_uuid(), now() - make_interval(secs => $1::int - i), 'profile_updated', 'Profile', 'p-' || (i % 50000),
         CASE WHEN i / $2::int > $3::int THEN 'user-' || (i % 1000) WHEN i % $2::int = 0 THEN 'erased-user'
           WHEN i % $2::int = $2::int / 2 THEN 'explained-user' ELSE 'user-' || (i % 1000) END, 'success', '203.0.113.' || (i % 250),
         'Mozilla/5.0', '{"plan": "pro"}', '{"salt":"' || md5(i::text) || md5(i::text) || '","values":[[["changes","body","email"],"\\"a@b.c\\""]]}',
         '[[["user_id"],"x"],[["ip"],"y"],[["user_agent"],"z"],[["changes","body","email"],"w"]]'
       FROM generate_series($4::int, $5::int) AS i`,
      [sizes.rows, every, sizes.userRows, from, to],
      'erasure',
    );
  // Two sessions (the fill is CPU-bound in PostgreSQL; two cores), a million rows at a time each.
  for (let done = 0; done < sizes.rows;) {
    const n = Math.min(2_000_000, sizes.rows - done);
    const half = Math.ceil(n / 2);
    await Promise.all([fill(done + 1, done + half), fill(done + half + 1, done + n)]);
    done += n;
    console.log(`  filled ${done} rows (${((performance.now() - fillStarted) / 1000).toFixed(0)} s)`);
  }
  await pg.query('ANALYZE audit_log', [], 'erasure');
  await pg.query('ALTER SYSTEM RESET max_wal_size');
  await pg.query('SELECT pg_reload_conf()');
  await pg.query('CHECKPOINT');
  const counted = await countRows(pg, 'erasure');
  if (counted !== sizes.rows) throw new Error(`erasure: ${counted} rows in audit_log, expected ${sizes.rows}`);
  const fillS = Math.round((performance.now() - fillStarted) / 1000);
  const started = performance.now();
  const [{ n }] = await pg.query<{ n: string }>(
    `SELECT count(*) AS n FROM audit_log_erase('erased-user', NULL, NULL, $1::uuid, false) WHERE state = 'erased'`,
    [randomUUID()],
    'erasure',
  );
  const eraseMs = performance.now() - started;
  const explained = await explainErase(pg);
  const birth = birthCost();
  const costs = logRuns.map((r) => 1 - r.privacy / r.plain);
  const percent = (x: number) => Math.round(x * 1000) / 10;
  details.erasure = { ...sizes, fillS, erasedRows: Number(n), eraseMs, logRuns, ...birth, explained };
  console.log(
    `  erase ${Math.round(eraseMs)} ms for ${n} rows; commitments cost per round ${costs.map((c) => `${percent(c)} %`).join(', ')}`,
  );
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
      value: percent(median(costs)),
      unit: '% of log()',
      target: { op: '<=', value: 3 },
      note: `1 − with/without privacy, median of ${costs.length} rounds (${costs.map((c) => percent(c)).join(', ')} %; spread ${percent(Math.min(...costs))} to ${percent(Math.max(...costs))}); ${median(logRuns.map((r) => r.privacy))} against ${median(logRuns.map((r) => r.plain))} entries/s`,
    },
    {
      key: 'erasure.commitmentCpuCost',
      value: percent(birth.privacyMicros / birth.plainMicros - 1),
      unit: '% of normalize()',
      note: `normalize() ${birth.plainMicros.toFixed(1)} → ${birth.privacyMicros.toFixed(1)} µs CPU per entry (entry key on)`,
    },
  ];
}

/**
 * The same erasure of the second user's rows, its statement's plan logged by `auto_explain` (with
 * ANALYZE, buffers and trigger times: slower than the timed run) and sent back as notices.
 */
async function explainErase(pg: TestPostgres): Promise<{ ms: number; plan: string[] }> {
  const client = await pg.connect('erasure');
  const plan: string[] = [];
  client.on('notice', (notice) => plan.push(...String(notice.message).split('\n')));
  try {
    await client.query(
      "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on; " +
        "SET auto_explain.log_triggers = on; SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = 'notice'",
    );
    const started = performance.now();
    await client.query(`SELECT count(*) FROM audit_log_erase('explained-user', NULL, NULL, $1::uuid, false)`, [randomUUID()]);
    const ms = Math.round(performance.now() - started);
    const shown = plan.filter((l) => /Trigger|Update on|Scan|Hash|Nested Loop|Execution Time|Planning Time/.test(l)).slice(0, 20);
    console.log(`  the second user's erasure under auto_explain: ${ms} ms\n${shown.map((l) => `    ${l}`).join('\n')}`);
    return { ms, plan };
  } finally {
    await client.end();
  }
}

/** `log()` into fresh tables without and with the `privacy` option, alternating which goes first; entries/s of each. */
async function commitmentCost(pg: TestPostgres, rounds: number): Promise<{ plain: number; privacy: number }[]> {
  const entries = auditEntries(WARM + LOG_ENTRIES);
  const [warm, measured] = [entries.slice(0, WARM), entries.slice(WARM)];
  const runs: { plain: number; privacy: number }[] = [];
  for (let round = 0; round < rounds; round++) {
    const rate = async (kind: 'plain' | 'privacy') => {
      const name = `erasure_${kind}_${round}`;
      const url = await freshAuditDatabase(pg, name);
      const { ms } = await moduleLog(url, warm, measured, kind === 'privacy' ? { privacy: PRIVACY } : {});
      const [{ rows, committed }] = await pg.query<{ rows: number; committed: number }>(
        'SELECT count(*)::int AS rows, count(commitments)::int AS committed FROM audit_log',
        [],
        name,
      );
      if (rows !== entries.length || committed !== (kind === 'privacy' ? rows : 0)) {
        throw new Error(`erasure: ${name} holds ${rows} rows, ${committed} with commitments; expected ${entries.length}`);
      }
      await pg.query(`DROP DATABASE ${name} WITH (FORCE)`);
      return Math.round((measured.length / ms) * 1000);
    };
    const order: ('plain' | 'privacy')[] = round % 2 === 0 ? ['plain', 'privacy'] : ['privacy', 'plain'];
    const run = { plain: 0, privacy: 0 };
    for (const kind of order) run[kind] = await rate(kind);
    runs.push(run);
    console.log(`  round ${round + 1}: log() without privacy ${run.plain}/s, with ${run.privacy}/s`);
  }
  return runs;
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
