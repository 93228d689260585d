import { sealerRoleSharedWarning } from '../audit.errors';
import { missingSealerPrivileges, sealerSeparation } from './sealer-roles';

const LOG = '"public"."audit_log"';
const SEALS = '"public"."audit_seal"';

/** A query function that answers as PostgreSQL does: the rows given. */
const answeringRows = (rows: object[]) => {
  const calls: unknown[][] = [];
  const query = async (_sql: string, parameters: unknown[]) => {
    calls.push(parameters);
    return rows;
  };
  return { query, calls };
};

/** One row of the privileges asked about. */
const answering = (row: Record<string, boolean>) => answeringRows([row]);

/** A role the app's role is a member of, as the separation statement answers it. */
const role = (
  name: string,
  held: { own?: boolean; superuser?: boolean; insert?: boolean; owns?: string[]; runsAsOwner?: string[] } = {},
) => ({
  app: 'app_role',
  role: name,
  own: held.own ?? false,
  superuser: held.superuser ?? false,
  insert: held.insert ?? false,
  owns: held.owns ?? [],
  runs_as_owner: held.runsAsOwner ?? [],
});

describe('sealer-roles: what the sealer role lacks, and how the app role could still append seals', () => {
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

  it('names the roles, the app role first, through which it can append seals, and asks about the tables given', async () => {
    const { query, calls } = answeringRows([
      role('app_role', { own: true }),
      role('pg_read_all_data'),
      role('sealer_role', { insert: true }),
      role('trail_owner', { insert: true, owns: ['audit_seal', 'audit_log'] }),
      role('schema_owner', { owns: ['schema public'] }),
    ]);
    expect(await sealerSeparation(query, LOG, SEALS)).toEqual({
      appRole: 'app_role',
      gaps: [
        { role: 'sealer_role', own: false, superuser: false, insert: true, owns: [], runsAsOwner: [] },
        { role: 'trail_owner', own: false, superuser: false, insert: true, owns: ['audit_seal', 'audit_log'], runsAsOwner: [] },
        { role: 'schema_owner', own: false, superuser: false, insert: false, owns: ['schema public'], runsAsOwner: [] },
      ],
    });
    expect(calls).toHaveLength(1);
    expect(calls[0][0]).toBe(LOG);
    expect(calls[0][1]).toEqual(expect.arrayContaining(['audit_seal', 'audit_seal_month', 'audit_month_chunk', 'audit_erasure_id']));
    expect(calls[0][2]).toBe(SEALS);
  });

  it('names a role whose code can run as the trail owner (TRIGGER, MAINTAIN), the app role itself or one it is a member of', async () => {
    const { query } = answeringRows([
      role('app_role', { own: true, runsAsOwner: ['TRIGGER on "public".audit_log'] }),
      role('maintainer', { runsAsOwner: ['MAINTAIN on "public".audit_seal', 'MAINTAIN on "public".audit_log'] }),
      role('pg_maintain', { runsAsOwner: ['MAINTAIN on every table'] }),
      role('reader'),
    ]);
    expect(await sealerSeparation(query, LOG, SEALS)).toEqual({
      appRole: 'app_role',
      gaps: [
        { role: 'app_role', own: true, superuser: false, insert: false, owns: [], runsAsOwner: ['TRIGGER on "public".audit_log'] },
        {
          role: 'maintainer',
          own: false,
          superuser: false,
          insert: false,
          owns: [],
          runsAsOwner: ['MAINTAIN on "public".audit_seal', 'MAINTAIN on "public".audit_log'],
        },
        { role: 'pg_maintain', own: false, superuser: false, insert: false, owns: [], runsAsOwner: ['MAINTAIN on every table'] },
      ],
    });
  });

  it('finds nothing when the app role can append no seal', async () => {
    const { query } = answeringRows([role('app_role', { own: true }), role('pg_read_all_data')]);
    expect(await sealerSeparation(query, LOG, SEALS)).toEqual({ appRole: 'app_role', gaps: [] });
  });

  it('names only the superuser of an app role that is one (a member of every role)', async () => {
    const { query } = answeringRows([
      role('postgres', { own: true, superuser: true, insert: true, owns: ['audit_seal'] }),
      role('sealer_role', { insert: true }),
    ]);
    expect((await sealerSeparation(query, LOG, SEALS)).gaps).toEqual([
      { role: 'postgres', own: true, superuser: true, insert: true, owns: ['audit_seal'], runsAsOwner: [] },
    ]);
    const member = answeringRows([role('app_role', { own: true }), role('postgres', { superuser: true, insert: true })]);
    expect((await sealerSeparation(member.query, LOG, SEALS)).gaps).toEqual([
      { role: 'postgres', own: false, superuser: true, insert: true, owns: [], runsAsOwner: [] },
    ]);
  });

  it('warns with each way, in the order found, and what the separation needs', () => {
    const gap = (name: string, held: { own?: boolean; superuser?: boolean; insert?: boolean; owns?: string[]; runsAsOwner?: string[] }) => {
      const { role: r, own, superuser, insert, owns, runs_as_owner } = role(name, held);
      return { role: r, own, superuser, insert, owns, runsAsOwner: runs_as_owner };
    };
    const text = sealerRoleSharedWarning(SEALS, 'app_role', [
      gap('app_role', { own: true, insert: true }),
      gap('sealer_role', { insert: true }),
      gap('trail_owner', {
        insert: true,
        owns: ['audit_seal', 'audit_log', 'schema public', 'audit_log_erase(text)', 'audit_seal_months(date)'],
      }),
      gap('pg_database_owner', { owns: ['schema public'] }),
      gap('maintainer', { runsAsOwner: ['TRIGGER on "public".audit_log', 'MAINTAIN on "public".audit_log'] }),
    ]);
    expect(text).toBe(
      `AUDIT_SEALER_ROLE_SHARED: integrity.sealerDatabaseUrl is set, but the application's role app_role can still append seals: ` +
        `it holds INSERT on ${SEALS}; it is a member of sealer_role, which holds INSERT on ${SEALS}; ` +
        `it is a member of trail_owner, which holds INSERT on ${SEALS} and owns audit_seal, audit_log, schema public and 2 more of the trail's objects; ` +
        `it is a member of pg_database_owner, which owns schema public; ` +
        `it is a member of maintainer, which holds TRIGGER on "public".audit_log, MAINTAIN on "public".audit_log, which runs its code as the trail's owner. ` +
        `Whoever holds its credentials can append seals (an owner grants itself INSERT and turns the table's triggers off; a trigger it makes runs as the owner inside the trail's functions), so the separation is not in force ` +
        `(the app's role must hold no INSERT on ${SEALS}, no TRIGGER or MAINTAIN on the trail's tables (never GRANT ALL on them), own none of the trail's tables, functions or schema, and be a member of no role that does: ` +
        `a role of their own owns them; see docs/INTEGRITY.md, "Roles")`,
    );
    expect(
      sealerRoleSharedWarning(SEALS, 'postgres', [gap('postgres', { own: true, superuser: true, insert: true, owns: ['audit_seal'] })]),
    ).toMatch(/^AUDIT_SEALER_ROLE_SHARED: [^;]* role postgres can still append seals: it is a superuser\. /);
    expect(
      sealerRoleSharedWarning(SEALS, 'app_role', [gap('app_role', { own: true, owns: ['audit_seal', 'audit_log', 'schema public'] })]),
    ).toContain('can still append seals: it owns audit_seal, audit_log, schema public. ');
  });
});
