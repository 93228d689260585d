const ignore = (): void => undefined;

/**
 * Writes one line to the process's stderr: a single write, newline-terminated, so that lines of
 * several writers never interleave. Never through `console`: Sentry's Console integration (on by
 * default) records every `console.error` call as a breadcrumb of the app's next events, and an
 * audit line (an entry, its `changes`, a person's values) must not travel there. A write that
 * fails (stderr closed) is dropped, as `console.error` drops it.
 *
 * @example
 * writeStderrLine(JSON.stringify({ event: 'audit.buffered', auditId }));
 */
export function writeStderrLine(line: string): void {
  process.stderr.write(`${line}\n`, (error) => {
    // The stream emits the error after this callback: with no listener it would end the process.
    if (error && process.stderr.listenerCount('error') === 0) process.stderr.once('error', ignore);
  });
}
