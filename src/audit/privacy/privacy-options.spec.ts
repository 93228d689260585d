import { AuditEntryNormalizer } from '../audit-entry';
import { AUDIT_ERROR_CODES } from '../audit.errors';
import { erasureSubject } from './erasure';
import { commitment, personalSplitter } from './personal-values';
import { revealPayloads } from './personal-reveal';
import { EACH, pseudonym, resolvePrivacyOptions } from './privacy-options';

const KEY = 'a-pseudonym-key-of-at-least-32-characters';

describe('the privacy option', () => {
  it('is off unless given, and parses paths with [] steps', () => {
    expect(resolvePrivacyOptions(undefined).enabled).toBe(false);
    expect(resolvePrivacyOptions({ personalData: ['changes.entities[].fields.email', 'metadata.ip'] }).paths).toEqual([
      ['changes', 'entities', EACH, 'fields', 'email'],
      ['metadata', 'ip'],
    ]);
  });

  it.each([
    [{ personalData: ['body.email'] }, 'privacy.personalData[0]'],
    [{ personalData: ['changes.items[]'] }, 'privacy.personalData[0]'],
    [{ personalData: 'changes.email' }, 'privacy.personalData'],
    [{ pseudonymKey: 'short' }, 'privacy.pseudonymKey'],
    [{ pseudonymizeUserId: true }, 'privacy.pseudonymizeUserId'],
    [{ pseudonymizeUserId: true, pseudonymKey: KEY, userIdPseudonym: (id: string) => id }, 'privacy.pseudonymizeUserId'],
    [{ userIdPseudonym: 'not a function' }, 'privacy.userIdPseudonym'],
    [{ pseudonym: true }, 'privacy.pseudonym'],
  ])('refuses %j, naming %s and never the key', (input, name) => {
    expect(() => resolvePrivacyOptions(input)).toThrow(name);
    try {
      resolvePrivacyOptions(input);
    } catch (error) {
      expect((error as Error).message).not.toContain('short"');
      expect([AUDIT_ERROR_CODES.invalidOption, AUDIT_ERROR_CODES.unknownOption]).toContain((error as { code: string }).code);
    }
  });

  it('stores a stable keyed pseudonym instead of the actor id, and erasure finds its rows by the raw id', () => {
    const options = resolvePrivacyOptions({ pseudonymKey: KEY, pseudonymizeUserId: true });
    const normalizer = new AuditEntryNormalizer([], 64 * 1024, undefined, personalSplitter(options));
    const a = normalizer.normalize({ action: 'a', userId: 'u-42' }).record;
    const b = normalizer.normalize({ action: 'b', userId: 42 }).record;
    expect(a.userId).toMatch(/^p1:[A-Za-z0-9_-]{43}$/);
    expect(a.userId).not.toContain('42');
    expect(normalizer.normalize({ action: 'c', userId: 'u-42' }).record.userId).toBe(a.userId);
    expect(b.userId).not.toBe(a.userId);
    expect(erasureSubject({ userId: 'u-42' }, options.userIdPseudonym)).toEqual([a.userId, null, null]);
    const own = resolvePrivacyOptions({ userIdPseudonym: (id: string) => `user-${id.length}` });
    expect(
      new AuditEntryNormalizer([], 64 * 1024, undefined, personalSplitter(own)).normalize({ action: 'a', userId: 'abc' }).record.userId,
    ).toBe('user-3');
  });

  it('takes personal values out of changes and metadata without changing what the caller passed, and puts them back on reading', () => {
    const options = resolvePrivacyOptions({ personalData: ['changes.entities[].fields.email', 'metadata.ip'] });
    const normalizer = new AuditEntryNormalizer([], 64 * 1024, undefined, personalSplitter(options));
    const changes = { entities: [{ fields: { email: 'a@b.c', n: 1 } }, { fields: { n: 2 } }] };
    const { record } = normalizer.normalize({ action: 'a', userId: 'u', changes, metadata: { ip: '10.0.0.1' } });
    expect(changes.entities[0].fields.email).toBe('a@b.c');
    expect(record.changes).toEqual({ entities: [{ fields: { n: 1 } }, { fields: { n: 2 } }] });
    expect(record.metadata).toEqual({});
    const { salt, values } = JSON.parse(record.personal as string) as { salt: string; values: [unknown[], string][] };
    expect(values).toEqual([
      [['changes', 'entities', 0, 'fields', 'email'], '"a@b.c"'],
      [['metadata', 'ip'], '"10.0.0.1"'],
    ]);
    expect(JSON.parse(record.commitments as string)).toEqual([
      [['user_id'], commitment(salt, ['user_id'], 'u')],
      [['changes', 'entities', 0, 'fields', 'email'], commitment(salt, ['changes', 'entities', 0, 'fields', 'email'], '"a@b.c"')],
      [['metadata', 'ip'], commitment(salt, ['metadata', 'ip'], '"10.0.0.1"')],
    ]);
    expect(revealPayloads(record.personal, record.commitments, record.changes, record.metadata)).toEqual({
      changes,
      metadata: { ip: '10.0.0.1' },
    });
    expect(revealPayloads('{"erased":"x"}', record.commitments, record.changes, record.metadata)).toEqual({
      changes: { entities: [{ fields: { email: '[ERASED]', n: 1 } }, { fields: { n: 2 } }] },
      metadata: { ip: '[ERASED]' },
    });
  });

  it('makes a different salt, so a different commitment, for the same value in every row', () => {
    const normalizer = new AuditEntryNormalizer([], 64 * 1024, undefined, personalSplitter(resolvePrivacyOptions({})));
    const [a, b] = [1, 2].map(() => normalizer.normalize({ action: 'a', userId: 'u-1' }).record.commitments);
    expect(a).not.toBe(b);
    expect(pseudonym(resolvePrivacyOptions({ pseudonymKey: KEY }).pseudonymKey!, 'user', 'u-1')).toMatch(/^p1:/);
  });
});
