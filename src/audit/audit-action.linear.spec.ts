import { deriveAction } from './audit-action';

// The derived action name is read in time linear in the handler's name (a pattern `_+$` backtracked on an inner run of `_`).
const SIZE = 200_000;

describe('deriveAction reads a 200k-character name within 1 s', () => {
  it('a handler name with a long inner run of underscores', () => {
    const start = performance.now();
    deriveAction('ContractController', `a${'_'.repeat(SIZE)}b`);
    expect(performance.now() - start).toBeLessThan(1000);
  });
});
