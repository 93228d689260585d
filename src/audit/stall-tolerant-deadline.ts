/**
 * Calls `expire` once `ms` have passed, unless the returned cancel function is called first. The
 * verdict waits one more turn of the event loop's I/O phase: an answer that arrived while the
 * process itself was stalled (a long synchronous task, a CPU-starved host) is taken first, so a
 * deadline measures the operation, not the process. The timer does not keep the process alive;
 * the verdict, once due, does for that one turn (an unref'd immediate would wait for some other
 * event to wake an idle loop, seconds later).
 *
 * @example
 * const cancel = stallTolerantDeadline(2000, () => reject(new DiskTimeoutError('fsync', 2000)));
 * handle.sync().then(() => { cancel(); resolve(); });
 */
export function stallTolerantDeadline(ms: number, expire: () => void): () => void {
  let verdict: NodeJS.Immediate | undefined;
  // Timers run before I/O callbacks in a turn of the loop: setImmediate runs after them.
  const timer = setTimeout(() => (verdict = setImmediate(expire)), ms).unref();
  return () => {
    clearTimeout(timer);
    if (verdict) clearImmediate(verdict);
  };
}
