import {
  addEntityChanges,
  auditScope,
  currentAuditContext,
  markRecorded,
  newAuditContext,
  recordedFor,
  runInAuditContext,
  settleRecorded,
  takeEntityChanges,
} from './audit-context';

const change = (name: string) => ({ value: name, bytes: 10 });
const MAX = 1000;

describe('audit contexts', () => {
  it('runs auditScope() inside a request in the request’s context while the request is open', () => {
    const request = newAuditContext('request');
    runInAuditContext(request, () =>
      auditScope(() => {
        const scope = currentAuditContext()!;
        addEntityChanges(scope, [change('a')], MAX);
        markRecorded(scope);
        expect(takeEntityChanges(scope)).toEqual({ entities: ['a'] });
      }),
    );
    expect(request.recordedAtomically).toBe(true);
  });

  it('keeps in the scope what it sees once the request’s row is being made', () => {
    const request = newAuditContext('request');
    let scope!: ReturnType<typeof newAuditContext>;
    runInAuditContext(request, () => auditScope(() => (scope = currentAuditContext()!)));
    addEntityChanges(scope, [change('early')], MAX);
    request.closed = true;
    addEntityChanges(scope, [change('late')], MAX);
    markRecorded(scope);
    expect(takeEntityChanges(request)).toEqual({ entities: ['early'] });
    expect(takeEntityChanges(scope)).toEqual({ entities: ['late'] });
    expect(request.recordedAtomically).toBe(false);
  });

  it('joins an enclosing scope, which stays the owner however deep the nesting', () => {
    auditScope(() => {
      const outer = currentAuditContext()!;
      auditScope(() => auditScope(() => addEntityChanges(currentAuditContext()!, [change('inner')], MAX)));
      expect(takeEntityChanges(outer)).toEqual({ entities: ['inner'] });
    });
    expect(currentAuditContext()).toBeUndefined();
  });

  it('has a record() row of an attempt given up on stand for nothing, in a scope inside it too, and the last attempt’s for the request', () => {
    const request = newAuditContext('request');
    const first = newAuditContext('attempt', request);
    let inFirst!: ReturnType<typeof newAuditContext>;
    runInAuditContext(first, () => auditScope(() => (inFirst = currentAuditContext()!)));
    first.superseded = true;
    const last = newAuditContext('attempt', request);
    expect([recordedFor(first), recordedFor(inFirst)]).toEqual([undefined, undefined]);
    markRecorded(inFirst);
    markRecorded(first);
    expect(request.recordedAtomically).toBe(false);
    // Its entity changes still go to the request's row.
    addEntityChanges(first, [change('first')], MAX);
    expect(recordedFor(last)).toBe(request);
    markRecorded(last);
    expect(request.recordedAtomically).toBe(true);
    expect(takeEntityChanges(request)).toEqual({ entities: ['first'] });
  });

  it('has a record() row of an attempt whose handler may run again unseen stand for nothing, in a scope inside it too', () => {
    const request = newAuditContext('request');
    const attempt = newAuditContext('attempt', request);
    attempt.mayRunAgain = true;
    let inAttempt!: ReturnType<typeof newAuditContext>;
    runInAuditContext(attempt, () => auditScope(() => (inAttempt = currentAuditContext()!)));
    expect([recordedFor(attempt), recordedFor(inAttempt)]).toEqual([undefined, undefined]);
    markRecorded(inAttempt);
    markRecorded(attempt);
    expect(request.recordedAtomically).toBe(false);
    // Its entity changes still go to the request's row.
    addEntityChanges(attempt, [change('run')], MAX);
    expect(takeEntityChanges(request)).toEqual({ entities: ['run'] });
  });

  it('marks the request when one unsettled record() row answers that it committed, and never rejects', async () => {
    const request = newAuditContext('request');
    request.unsettled = [() => Promise.resolve(false), () => Promise.reject(new Error('lost'))];
    await settleRecorded(request);
    expect(request.recordedAtomically).toBe(false);
    expect(request.unsettled).toBeUndefined();
    request.unsettled = [() => Promise.reject(new Error('lost')), () => Promise.resolve(true)];
    await settleRecorded(request);
    expect(request.recordedAtomically).toBe(true);
  });
});
