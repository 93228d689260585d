import { PIN_SEARCH_PATH_SQL, qualifiedTable, resolveTable } from './search-path';

describe('search-path', () => {
  it('pins the search path of a transaction to the catalog, then the session’s temporary schema', () => {
    expect(PIN_SEARCH_PATH_SQL).toBe('SET LOCAL search_path = pg_catalog, pg_temp');
  });

  it('names a table without a schema as public’s, for the verifier', () => {
    expect(qualifiedTable('audit_log')).toBe('public.audit_log');
    expect(qualifiedTable('ops.audit_log')).toBe('ops.audit_log');
  });

  it('resolves a table for the sealer by asking the server for its schema and name, the path quoted', async () => {
    const asked: unknown[][] = [];
    const query = (sql: string, parameters: unknown[]) => {
      asked.push([sql, parameters]);
      return Promise.resolve([{ schema: 'ops', name: 'Audit Log' }]);
    };
    expect(await resolveTable(query, 'Audit Log')).toBe('ops.Audit Log');
    expect(asked).toHaveLength(1);
    expect(asked[0][1]).toEqual(['"Audit Log"']);
    expect(asked[0][0]).toMatch(/pg_catalog\.to_regclass\(\$1\)/);
  });

  it('throws when the server finds no such table', async () => {
    await expect(resolveTable(() => Promise.resolve([]), 'nowhere.audit_log')).rejects.toThrow(
      'relation "nowhere.audit_log" does not exist',
    );
  });
});
