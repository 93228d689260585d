import { resolveAuditOptions } from '../audit-options';
import { AUDIT_ERROR_CODES, type AuditConfigError } from '../audit.errors';

class Nda {}

describe('the diffs option', () => {
  it('defaults to no entities named and nothing excluded', () => {
    expect(resolveAuditOptions({}).diffs).toEqual({ entities: [], exclude: {} });
  });

  it('takes entity classes and names, and property names to exclude', () => {
    const { diffs } = resolveAuditOptions({ diffs: { entities: [Nda, 'Contract'], exclude: { Nda: ['updatedAt'] } } });
    expect(diffs).toEqual({ entities: [Nda, 'Contract'], exclude: { Nda: ['updatedAt'] } });
  });

  it.each([
    [[], 'diffs'],
    [{ entities: Nda }, 'diffs.entities'],
    [{ entities: [Nda, 42] }, 'diffs.entities'],
    [{ entities: [' '] }, 'diffs.entities'],
    [{ exclude: ['updatedAt'] }, 'diffs.exclude'],
    [{ exclude: { Nda: 'updatedAt' } }, 'diffs.exclude.Nda'],
    [{ exclude: { Nda: [''] } }, 'diffs.exclude.Nda'],
  ])('rejects %j naming %s', (diffs, key) => {
    expect(() => resolveAuditOptions({ diffs } as never)).toThrow(`option "${key}" must be`);
  });

  it('rejects an unknown key of diffs', () => {
    let error: AuditConfigError | undefined;
    try {
      resolveAuditOptions({ diffs: { entity: [Nda] } } as never);
    } catch (caught) {
      error = caught as AuditConfigError;
    }
    expect(error?.code).toBe(AUDIT_ERROR_CODES.unknownOption);
    expect(error?.message).toContain('option "diffs.entity" is not known; known options: entities, exclude');
  });
});
