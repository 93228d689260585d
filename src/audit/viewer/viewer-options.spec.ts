import { type CanActivate } from '@nestjs/common';
import { resolveAuditHttpOptions } from '../audit-options';
import { AuditConfigError } from '../audit.errors';

const guard: CanActivate = { canActivate: () => true };

describe('http.viewer', () => {
  it('is off unless given, and on with true', () => {
    expect(resolveAuditHttpOptions({ guard }).viewer).toBe(false);
    expect(resolveAuditHttpOptions({ guard, path: 'admin/audit', viewer: true })).toEqual({ guard, path: 'admin/audit', viewer: true });
  });

  it('refuses anything but a boolean, naming the key', () => {
    expect(() => resolveAuditHttpOptions({ guard, viewer: 'yes' })).toThrow(AuditConfigError);
    expect(() => resolveAuditHttpOptions({ guard, viewer: 'yes' })).toThrow(/http\.viewer/);
  });

  it('names it among the known keys when a key is misspelt', () => {
    expect(() => resolveAuditHttpOptions({ guard, veiwer: true })).toThrow(/http\.viewer/);
  });
});
