import { sealOnce, type SealRunner } from './seal-store';

/** Rows picked after the newest seal, as the sealer's select returns them. */
interface Picked {
  id: string;
  tx: string;
  month: string;
}

/**
 * A connection answering sealOnce's statements as PostgreSQL does, on an empty seal table: the
 * rows given are picked, `retiredMonths` are the months retention removed. A seal table from before
 * the retention columns has no `retention_month`: reading it fails, as it would there.
 */
function runnerWith(picked: Picked[], retiredMonths: string[], { retained = true } = {}) {
  const statements: string[] = [];
  let active = false;
  const runner: SealRunner = {
    get isTransactionActive() {
      return active;
    },
    startTransaction: async () => {
      active = true;
    },
    commitTransaction: async () => {
      active = false;
    },
    rollbackTransaction: async () => {
      active = false;
    },
    query: async (sql: string) => {
      statements.push(sql);
      if (sql.startsWith('SET LOCAL')) return [];
      if (sql.includes('pg_try_advisory_xact_lock')) return [{ locked: true }];
      if (sql.includes('pg_catalog.pg_attribute')) return [{ committed: true, retained }];
      if (sql.includes('ORDER BY s.seq DESC LIMIT 1')) return [];
      if (sql.includes('picked AS MATERIALIZED')) {
        if (sql.includes('ORDER BY l.id LIMIT')) return []; // rows without a transaction id: none
        return picked.map((row) => ({ ...row, leaf: Buffer.alloc(32, Number(row.tx) % 256), horizon: '9000' }));
      }
      if (sql.includes('s.retention_month IS NOT NULL')) {
        if (!retained) throw new Error('column s.retention_month does not exist');
        return retiredMonths.map((month) => ({ month }));
      }
      if (sql.startsWith('INSERT INTO')) return [];
      if (sql.includes('WHERE id = ANY($1::uuid[])')) return [];
      throw new Error(`unexpected statement: ${sql}`);
    },
  };
  return { runner, statements };
}

const row = (n: number, month: string): Picked => ({ id: `01937a4c-0000-7000-8000-00000000000${n}`, tx: String(100 + n), month });
const retiredStatements = (statements: string[]) => statements.filter((sql) => sql.includes('s.retention_month IS NOT NULL'));

describe('sealOnce: a row dated in a month retention removed is a retired row written back, never sealed', () => {
  it('names each row of a retired month forged, with its month, and seals the others', async () => {
    const { runner } = runnerWith([row(1, '2026-03'), row(2, '2026-01'), row(3, '2026-02'), row(4, '2026-01')], ['2026-01', '2026-02']);
    const seal = await sealOnce(runner, 'public.audit_log', { maxRows: 100, signingKey: null });
    if (seal === null || seal === 'busy' || !('forged' in seal)) throw new Error(`expected a seal, got ${JSON.stringify(seal)}`);
    expect(seal.rowCount).toBe(1);
    expect(seal.lastId).toBe(row(4, '').id);
    expect(seal.forged.map(({ id, reason }) => ({ id, reason }))).toEqual([
      { id: row(2, '').id, reason: 'it is dated in 2026-01, a month retention removed: a retired row written back' },
      { id: row(3, '').id, reason: 'it is dated in 2026-02, a month retention removed: a retired row written back' },
      { id: row(4, '').id, reason: 'it is dated in 2026-01, a month retention removed: a retired row written back' },
    ]);
  });

  it('seals every row when retention removed no month, or other months', async () => {
    for (const retired of [[], ['2025-12', '2026-04']]) {
      const { runner } = runnerWith([row(1, '2026-03'), row(2, '2026-01')], retired);
      const seal = await sealOnce(runner, 'public.audit_log', { maxRows: 100, signingKey: null });
      expect(seal).toMatchObject({ rowCount: 2, forged: [] });
    }
  });

  it('reads the retired months only when there are rows to judge, and never on a seal table without the retention columns', async () => {
    const idle = runnerWith([], ['2026-01']);
    expect(await sealOnce(idle.runner, 'public.audit_log', { maxRows: 100, signingKey: null })).toBeNull();
    expect(retiredStatements(idle.statements)).toEqual([]);
    const old = runnerWith([row(1, '2026-01')], ['2026-01'], { retained: false });
    expect(await sealOnce(old.runner, 'public.audit_log', { maxRows: 100, signingKey: null })).toMatchObject({ rowCount: 1, forged: [] });
    const busy = runnerWith([row(1, '2026-01')], ['2026-01']);
    await sealOnce(busy.runner, 'public.audit_log', { maxRows: 100, signingKey: null });
    expect(retiredStatements(busy.statements)).toHaveLength(1);
  });
});
