import { type AuditState, type AuditStatus } from '../audit.service';

/**
 * What {@link waitForAuditState} reads: `AuditService`, or anything with its `status()`.
 *
 * @example
 * const source: AuditStatusSource = { status: () => app.get(AuditService).status() };
 * await waitForAuditState(source, 'up');
 */
export interface AuditStatusSource {
  status(): AuditStatus;
}

/**
 * Resolves with the service's status once its state is `state` (or `state` returns true for the
 * status); rejects after `timeoutMs` (default 5000) naming the last status seen.
 *
 * @example
 * await waitForAuditState(app.get(AuditService), 'down');
 * await waitForAuditState(app.get(AuditService), (s) => s.state === 'up' && s.buffered === 0);
 */
export async function waitForAuditState(
  service: AuditStatusSource,
  state: AuditState | ((status: AuditStatus) => boolean),
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<AuditStatus> {
  const matches = typeof state === 'function' ? state : (status: AuditStatus) => status.state === state;
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  for (;;) {
    const status = service.status();
    if (matches(status)) return status;
    if (Date.now() > deadline) {
      const wanted = typeof state === 'function' ? 'the expected status' : `state '${state}'`;
      throw new Error(
        `audit service did not reach ${wanted} within ${options.timeoutMs ?? 5000} ms; last status: ${JSON.stringify(status)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 10));
  }
}
