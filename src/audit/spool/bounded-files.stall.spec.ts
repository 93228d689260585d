import { tmpdir } from 'node:os';
import { boundedFiles } from './bounded-files';
import { nodeSpoolFiles } from './spool-files';

// A deadline measures the disk, not the process: a call that returned while the event loop was
// blocked (a long synchronous task, a CPU-starved host) has its answer taken, not a timeout.

/** Keeps the event loop busy for `ms`, as a long synchronous task does. */
function blockLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

describe('boundedFiles after a stall of the event loop', () => {
  it('takes the answer of a call that returned while the loop was blocked past the deadline', async () => {
    const files = boundedFiles(nodeSpoolFiles, 100);
    const listed = files.readdir(tmpdir());
    blockLoop(400);
    await expect(listed).resolves.toEqual(expect.any(Array));
    expect(files.timeouts).toBe(0);
    expect(files.stalled).toBe(false);
  });

  it('still gives up a call that has not returned when the deadline passes', async () => {
    const files = boundedFiles({ ...nodeSpoolFiles, readdir: () => new Promise<string[]>(() => undefined) }, 100);
    const listed = files.readdir(tmpdir());
    blockLoop(400);
    await expect(listed).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT' });
    expect(files.timeouts).toBe(1);
  });
});
