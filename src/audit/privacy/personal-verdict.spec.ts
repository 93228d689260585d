import { erasedBy } from './personal-reveal';
import { commitment, ERASED, type PersonalPath } from './personal-values';
import { personalProblem } from './personal-verdict';

const SALT = 'c2FsdC1vZi10aGlzLXJvdy1pcy0zMi1ieXRlcy1sb25n';
const ERASURE = '01937a4c-0000-7000-8000-0000000000e1';
const EMAIL: PersonalPath = ['changes', 'body', 'email'];

/** A row's PERSONAL_VALUES_SQL text as PostgreSQL selects it, its commitments made over `logged`. */
function rowText(
  stored: { userId: string | null; email: string },
  logged = stored,
  personal?: string | null,
  commitments?: string | null,
): string {
  const committed = JSON.stringify([
    ...(logged.userId === null ? [] : [[['user_id'], commitment(SALT, ['user_id'], logged.userId)]]),
    [EMAIL, commitment(SALT, EMAIL, JSON.stringify(logged.email))],
  ]);
  const values = personal !== undefined ? personal : JSON.stringify({ salt: SALT, values: [[EMAIL, JSON.stringify(stored.email)]] });
  return JSON.stringify([stored.userId, null, null, values, commitments !== undefined ? commitments : committed]);
}

describe('personalProblem: a row whose personal values are not as the module wrote or erased them', () => {
  it('passes a row without commitments or personal values, and one as written', () => {
    expect(personalProblem(null)).toBeNull();
    expect(personalProblem(undefined)).toBeNull();
    expect(personalProblem(rowText({ userId: 'alice', email: 'a@example.com' }))).toBeNull();
  });

  it('names an actor or a value rewritten, and a path planted beside the committed ones', () => {
    const logged = { userId: 'alice', email: 'a@example.com' };
    expect(personalProblem(rowText({ userId: 'mallory', email: logged.email }, logged))).toBe(
      'its value at user_id does not match its commitment: changed, not erased',
    );
    expect(personalProblem(rowText({ userId: 'alice', email: 'm@example.com' }, logged))).toBe(
      'its value at changes.body.email does not match its commitment: changed, not erased',
    );
    const planted = JSON.stringify({
      salt: SALT,
      values: [
        [EMAIL, JSON.stringify(logged.email)],
        [['changes', 'body', 'title'], '"Approved"'],
      ],
    });
    expect(personalProblem(rowText(logged, logged, planted))).toBe('its personal values are not the ones committed to');
  });

  it('passes an erased row, and names an erased marker on a row without commitments', () => {
    const marker = JSON.stringify({ erased: ERASURE });
    expect(personalProblem(rowText({ userId: ERASED, email: 'x' }, { userId: 'alice', email: 'x' }, marker))).toBeNull();
    expect(personalProblem(JSON.stringify(['alice', null, null, marker, null]))).toBe('its commitments are not as the module writes them');
  });
});

describe('erasedBy: the erasure a row names, only where an erasure could have taken it', () => {
  it('reads the erasure id of an erased row with commitments', () => {
    expect(erasedBy(JSON.stringify({ erased: ERASURE }), '[]')).toBe(ERASURE);
  });

  it('is null for a row not erased, a row without personal values, and a marker on a row without commitments', () => {
    expect(erasedBy(JSON.stringify({ salt: SALT, values: [] }), '[]')).toBeNull();
    expect(erasedBy(null, '[]')).toBeNull();
    expect(erasedBy(undefined, undefined)).toBeNull();
    expect(erasedBy(JSON.stringify({ erased: ERASURE }), null)).toBeNull();
    expect(erasedBy('not json', '[]')).toBeNull();
  });
});
