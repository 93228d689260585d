import { createHash } from 'node:crypto';
import { commitment, parseCommitments, parsePersonal } from './personal-values';

const SALT = 'c2FsdC1vZi10aGlzLXJvdy1pcy0zMi1ieXRlcy1sb25n';

describe('commitment: what a row commits to', () => {
  it('is SHA-256 of the version, the salt, the path and the value, one a line, base64url (docs/PRIVACY.md)', () => {
    const expected = createHash('sha256').update(`audit-personal-v1\n${SALT}\n["changes","email"]\n"a@example.com"`).digest('base64url');
    expect(commitment(SALT, ['changes', 'email'], '"a@example.com"')).toBe(expected);
  });
});

describe('parsePersonal: a personal column as the module writes it, or null', () => {
  it('reads the marker of an erased row, and only a marker with no other key', () => {
    expect(parsePersonal('{"erased":"e-1"}')).toEqual({ erased: 'e-1' });
    expect(parsePersonal('{"erased":"e-1","salt":"s"}')).toBeNull();
    expect(parsePersonal('{"erased":5}')).toBeNull();
    expect(parsePersonal('{"other":"e-1"}')).toBeNull();
  });

  it('reads the salt and values of a row not erased, and nothing else of it', () => {
    const values = [
      [['changes', 'email'], '"a@example.com"'],
      [['metadata', 'items', 0, 'phone'], '"+33 1"'],
    ];
    expect(parsePersonal(JSON.stringify({ salt: SALT, values }))).toEqual({ salt: SALT, values });
    expect(parsePersonal(JSON.stringify({ salt: SALT, values: [], extra: 1 }))).toEqual({ salt: SALT, values: [] });
  });

  it.each([
    ['NULL', null],
    ['not JSON', '{"salt":'],
    ['JSON null', 'null'],
    ['a salt that is not text', JSON.stringify({ salt: 7, values: [] })],
    ['values that are not a list', JSON.stringify({ salt: SALT, values: {} })],
  ])('refuses %s', (_what, text) => {
    expect(parsePersonal(text)).toBeNull();
  });

  it.each([
    ['not a pair', 'x'],
    ['a pair with a third item', [['changes', 'a'], '"x"', '"y"']],
    ['one item', [['changes', 'a']]],
    ['a value that is not text', [['changes', 'a'], 5]],
    ['a path that is not a list', ['changes', '"x"']],
    ['a path of one step', [['changes'], '"x"']],
    ['a path into another column', [['personal', 'a'], '"x"']],
    ['a path into the actor', [['user_id', 'a'], '"x"']],
    ['a step that is a fraction', [['changes', 1.5], '"x"']],
    ['a step below 0', [['changes', 'a', -1], '"x"']],
    ['a step that is not a key or an index', [['changes', true], '"x"']],
    ['a value that is not JSON text', [['changes', 'a'], 'not json']],
  ])('refuses a value entry that is %s, even after a good one', (_what, entry) => {
    const good = [['metadata', 'a', 0], '"x"'];
    expect(parsePersonal(JSON.stringify({ salt: SALT, values: [good] }))).not.toBeNull();
    expect(parsePersonal(JSON.stringify({ salt: SALT, values: [good, entry] }))).toBeNull();
    expect(parsePersonal(JSON.stringify({ salt: SALT, values: [entry] }))).toBeNull();
  });
});

describe('parseCommitments: a commitments column as the module writes it, or null', () => {
  it('reads each path and its commitment', () => {
    expect(parseCommitments('[]')).toEqual([]);
    expect(parseCommitments('[[["user_id"],"c1"],[["changes","email"],"c2"]]')).toEqual([
      [['user_id'], 'c1'],
      [['changes', 'email'], 'c2'],
    ]);
  });

  it.each([
    ['NULL', null],
    ['not JSON', '[['],
    ['an object', '{"user_id":"c1"}'],
    ['an item that is not a pair', '[[["user_id"],"c1"],1]'],
    ['a path that is not a list', '[["user_id","c1"]]'],
    ['a commitment that is not text', '[[["user_id"],5]]'],
  ])('refuses %s', (_what, text) => {
    expect(parseCommitments(text)).toBeNull();
  });
});
