import { deriveAction } from './audit-action';
import { AUDITED_METADATA } from './audit.constants';
import { AuditConfigError } from './audit.errors';
import { Audited } from './audited.decorator';

describe('@Audited', () => {
  it('stores the action and entity options on the handler', () => {
    class NdasController {
      @Audited('nda_created', { entityType: 'NDA', entityId: { result: 'id' } })
      create() {}
    }
    expect(Reflect.getMetadata(AUDITED_METADATA, NdasController.prototype.create)).toEqual({
      action: 'nda_created',
      entityType: 'NDA',
      entityId: { result: 'id' },
    });
  });

  it.each(['NdaCreated', 'nda-created', '1nda', '', 'nda created'])('refuses the action %j when the class is defined', (action) => {
    const define = () => {
      class BadController {
        @Audited(action)
        create() {}
      }
      return BadController;
    };
    expect(define).toThrow(AuditConfigError);
    expect(define).toThrow(/on BadController\.create must match/);
  });

  it('refuses an entityId source that is neither a param, a result field nor a function', () => {
    expect(() => {
      class BadController {
        @Audited('a', { entityId: { query: 'id' } as never })
        create() {}
      }
      return BadController;
    }).toThrow(/@Audited\(entityId\) on BadController.create/);
  });
});

describe('deriveAction', () => {
  it.each([
    ['NdasController', 'archiveAll', 'ndas.archive_all'],
    ['HTTPAdminController', 'resetCache', 'httpadmin.reset_cache'],
    ['Controller', 'x', 'controller.x'],
    ['_2FAController', 'enable', 'http.2_fa.enable'],
  ])('%s.%s → %s', (controller, handler, action) => {
    expect(deriveAction(controller, handler)).toBe(action);
    expect(action).toMatch(/^[a-z][a-z0-9_.]*$/);
  });
});
