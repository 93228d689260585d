import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { stallTolerantDeadline } from './stall-tolerant-deadline';

// A disk deadline expires when it is due, even in a process with nothing else to do: a call on a
// hung disk (a sync request's spool append, the quarantine's fsync) is given up after
// writeTimeoutMs, not whenever some other event next wakes the event loop.

/** Runs a deadline of `ms` in a fresh, otherwise quiet process; how long it took to expire. */
function expiryInQuietProcess(ms: number): number {
  const script = `
    const { stallTolerantDeadline } = await import(process.argv[1]);
    const started = Date.now();
    // Keeps the process alive, far past the deadline, without waking its event loop before then.
    const guard = setTimeout(() => undefined, 10_000);
    stallTolerantDeadline(${ms}, () => {
      console.log(Date.now() - started);
      clearTimeout(guard);
    });`;
  const run = spawnSync(
    process.execPath,
    ['--experimental-strip-types', '--no-warnings', '--input-type=module', '-e', script, join(__dirname, 'stall-tolerant-deadline.ts')],
    { encoding: 'utf8', timeout: 30_000 },
  );
  expect(run.stderr).toBe('');
  return Number(run.stdout.trim());
}

describe('stallTolerantDeadline', () => {
  it('expires in an otherwise idle process, without waiting for another event to wake its loop', () => {
    // Due at 50 ms; the next other event of that process is 10 s away.
    expect(expiryInQuietProcess(50)).toBeLessThan(5000);
  });

  it('does not expire once cancelled', async () => {
    let expired = false;
    const cancel = stallTolerantDeadline(20, () => (expired = true));
    cancel();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(expired).toBe(false);
  });
});
