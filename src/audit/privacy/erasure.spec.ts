import { AuditEntryNormalizer } from '../audit-entry';
import { erasureSubject } from './erasure';

// An erasure finds rows by the actor or subject as the row stores it, so the request's ids must be
// taken to the stored form exactly as log() takes them: cleaned of what PostgreSQL refuses, and cut.
describe('erasureSubject', () => {
  const normalizer = new AuditEntryNormalizer([], 64 * 1024);
  const stored = (entry: { userId?: string | number; entityType?: string; entityId?: string }) =>
    normalizer.normalize({ action: 'profile_updated', ...entry }).record;

  it.each([
    ['a plain id', 'u-42'],
    ['a number', 42],
    ['a control character', 'u-\u0007-7'],
    ['a NUL', 'u-\u0000-7'],
    ['a lone surrogate', 'u-\ud800-7'],
    ['300 characters', 'u'.repeat(300)],
  ])('takes a user id with %s to the form log() stores', (_, userId) => {
    expect(erasureSubject({ userId }, null)).toEqual([stored({ userId }).userId, null, null]);
  });

  it.each([
    ['control characters', 'Pro\u0001file', 'p-\u0000-1'],
    ['ids longer than stored', 'T'.repeat(200), 'i'.repeat(400)],
  ])('takes an entity with %s to the form log() stores', (_, entityType, entityId) => {
    const record = stored({ entityType, entityId });
    expect(erasureSubject({ entityType, entityId }, null)).toEqual([null, record.entityType, record.entityId]);
  });

  it('applies the pseudonym to the stored form of the id', () => {
    expect(erasureSubject({ userId: 'u-\u0007' }, (id) => `p:${id}`)).toEqual([`p:${stored({ userId: 'u-\u0007' }).userId}`, null, null]);
  });

  it.each([[{}], [{ userId: '' }], [{ userId: { id: 1 } }], [{ entityType: 'NDA' }], [{ userId: 'u', entityType: 'NDA', entityId: '1' }]])(
    'refuses %j',
    (request) => {
      expect(() => erasureSubject(request as never, null)).toThrow();
    },
  );
});
