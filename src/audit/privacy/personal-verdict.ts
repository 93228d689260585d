import { commitment, ERASED, parseCommitments, parsePersonal, type PersonalPath } from './personal-values';

const ACTOR_COLUMNS = ['user_id', 'ip', 'user_agent'];

/** The `personal` column of an erased row, exactly as `audit_log_erase` writes it (and retention carries it forward). */
const ERASED_MARKER = /^\{"erased":"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"\}$/;

/**
 * A row's actor columns, `personal` and `commitments` as one JSON text for {@link personalVerdict}
 * (NULL for a row with neither: `personal` without commitments is a value the module never
 * writes), selected from `audit_log AS l`.
 */
export const PERSONAL_VALUES_SQL = `CASE WHEN l.commitments IS NULL AND l.personal IS NULL THEN NULL ELSE pg_catalog.json_build_array(l.user_id, l.ip, l.user_agent, l.personal, l.commitments)::text END`;

/**
 * Whether a row's personal values are as the module wrote them or as `audit_log_erase` erased
 * them: each value still present matches its commitment (the actor's columns and each path of
 * `personal`), or the row holds nothing but `[ERASED]` and the erased marker. A row's seal and
 * entry code cover the commitments, not the values: this is what vouches for the values. Gives
 * the problem, or the erasure id of an erased row (null for one not erased).
 *
 * @example
 * personalVerdict(['mallory', null, null], personalText, commitmentsText);
 * // { problem: 'its value at user_id does not match its commitment: changed, not erased' }
 */
export function personalVerdict(
  actor: readonly (string | null)[],
  personalText: string | null,
  commitmentsText: string | null,
): { problem: string } | { erasure: string | null } {
  const problem = (text: string) => ({ problem: text });
  const commitments = parseCommitments(commitmentsText);
  const personal = parsePersonal(personalText);
  if (!commitments) return problem('its commitments are not as the module writes them');
  if (!personal) return problem('its personal values are neither as the module writes them nor erased');
  const committed = new Map(commitments.map(([path, c]) => [JSON.stringify(path), c]));
  if (committed.size !== commitments.length) return problem('a personal value is committed to twice');
  for (const [i, column] of ACTOR_COLUMNS.entries()) {
    const has = committed.has(JSON.stringify([column]));
    if (has !== (actor[i] !== null)) {
      return problem(`its ${column} is ${actor[i] === null ? 'missing' : 'present'}, its commitments say otherwise`);
    }
  }
  if ('erased' in personal) {
    if (!ERASED_MARKER.test(personalText as string)) return problem('its erased marker is not as audit_log_erase writes it');
    const changed = ACTOR_COLUMNS.filter((_, i) => actor[i] !== null && actor[i] !== ERASED);
    if (changed.length > 0) return problem(`erased, but its ${changed.join(', ')} holds a value instead of ${ERASED}`);
    return { erasure: personal.erased };
  }
  const present: [PersonalPath, string][] = [];
  ACTOR_COLUMNS.forEach((column, i) => {
    if (actor[i] !== null) present.push([[column], actor[i] as string]);
  });
  present.push(...personal.values);
  if (present.length !== committed.size) return problem('its personal values are not the ones committed to');
  for (const [path, value] of present) {
    const expected = committed.get(JSON.stringify(path));
    if (expected === undefined) return problem(`its value at ${path.join('.')} was never committed to`);
    if (typeof value !== 'string' || commitment(personal.salt, path, value) !== expected) {
      return problem(`its value at ${path.join('.')} does not match its commitment: changed, not erased`);
    }
  }
  return { erasure: null };
}

/**
 * {@link personalVerdict} of a row from its {@link PERSONAL_VALUES_SQL} text: its problem, or
 * null (neither commitments nor personal values, or values as written or erased).
 *
 * @example
 * personalProblem(row.personal_values); // null, or 'its value at user_id does not match its commitment: changed, not erased'
 */
export function personalProblem(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  const [userId, ip, userAgent, personalText, commitmentsText] = JSON.parse(text) as (string | null)[];
  const verdict = personalVerdict([userId, ip, userAgent], personalText, commitmentsText);
  return 'problem' in verdict ? verdict.problem : null;
}
