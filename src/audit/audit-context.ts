import { AsyncLocalStorage } from 'node:async_hooks';

/** What the interceptor needs to know about the request it is auditing. */
interface AuditRequestContext {
  /** Set when the handler wrote the request's audit row itself with `AuditService.record()`. */
  recordedAtomically: boolean;
}

const storage = new AsyncLocalStorage<AuditRequestContext>();

/**
 * Runs `work` (the handler, when the interceptor subscribes to it) with a fresh request context,
 * and returns that context so the interceptor can read it afterwards.
 *
 * @example
 * const context = runInAuditContext(() => next.handle().subscribe(subscriber));
 */
export function runInAuditContext(work: () => void): AuditRequestContext {
  const context: AuditRequestContext = { recordedAtomically: false };
  storage.run(context, work);
  return context;
}

/** Notes, for the request being handled (if any), that its audit row is already written. */
export function markRecordedAtomically(): void {
  const context = storage.getStore();
  if (context) context.recordedAtomically = true;
}
