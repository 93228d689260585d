import { canInsertSeals, missingSealerPrivileges } from './sealer-roles';

const LOG = '"public"."audit_log"';
const SEALS = '"public"."audit_seal"';

/** A query function that answers as PostgreSQL does: one row of the privileges asked about. */
const answering = (row: Record<string, boolean>) => {
  const calls: unknown[][] = [];
  const query = async (_sql: string, parameters: unknown[]) => {
    calls.push(parameters);
    return [row];
  };
  return { query, calls };
};

describe('sealer-roles: what the sealer role lacks, and whether the app role may insert seals', () => {
  it('names nothing when every privilege is held, and asks about the tables given', async () => {
    const { query, calls } = answering({ log_select: true, seal_select: true, seal_insert: true });
    expect(await missingSealerPrivileges(query, LOG, SEALS)).toEqual([]);
    expect(calls).toEqual([[LOG, SEALS]]);
  });

  it('names each missing privilege on its table, in a fixed order', async () => {
    const none = answering({ log_select: false, seal_select: false, seal_insert: false });
    expect(await missingSealerPrivileges(none.query, LOG, SEALS)).toEqual([`SELECT on ${LOG}`, `INSERT on ${SEALS}`, `SELECT on ${SEALS}`]);
    for (const [lacking, missing] of [
      ['log_select', `SELECT on ${LOG}`],
      ['seal_insert', `INSERT on ${SEALS}`],
      ['seal_select', `SELECT on ${SEALS}`],
    ]) {
      const one = answering({ log_select: true, seal_select: true, seal_insert: true, [lacking]: false });
      expect(await missingSealerPrivileges(one.query, LOG, SEALS)).toEqual([missing]);
    }
  });

  it('tells whether the role may insert into the seal table', async () => {
    const yes = answering({ insert: true });
    expect(await canInsertSeals(yes.query, SEALS)).toBe(true);
    expect(yes.calls).toEqual([[SEALS]]);
    expect(await canInsertSeals(answering({ insert: false }).query, SEALS)).toBe(false);
  });
});
