// Promise (docs/FAILURES.md, "A slow or stuck stderr"): "A line is safe from the process's end once
// stderr has taken it: handed to the kernel, in the pipe the log driver reads or in the file." Sync
// mode answers a request whose entry's only copy is its line "once stderr has taken that line …
// Past that, the response goes out with the line still in memory and the entry counts in
// `stderrLate`"; `stderrDropped` counts the lines not written. (FAILURES.md also says "A closed
// stderr drops the lines, as `console.error` did, and the app goes on": dropping is documented,
// answering them as taken and counting them nowhere is not; AuditService.answer()'s own doc says an
// entry whose line was "not written" counts in `stderrLate`.)
// Break: a write stderr refuses is taken as "stderr has taken it". Lines waiting in memory when
// the pipe's reader goes away (a log driver that crashed or was restarted) fail with EPIPE; lines
// written to a stderr file on a full disk fail with ENOSPC. Either way the write's callback
// settles the line as taken: the wait for the lines answers true, and the lines that reached no
// one are counted nowhere (not in droppedLines, so neither in stderrDropped nor, for sync
// entries, in stderrLate).
// Observed: stderrLinesTaken() answers true and droppedLines is 0, after about 1 MiB of lines went
// nowhere (EPIPE), and after 10 lines /dev/full refused (ENOSPC).
// Severity: medium (sync entries whose only copy outside the process is gone are answered as
// safe; /health shows nothing wrong while the ring is the last copy).
// Fix guess: in write(), settle a line whose callback has an error as not taken (count it in
// `dropped`, and let stderrLinesTaken() answer false while such lines are not said).
import { spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModuleKind, ScriptTarget, transpileModule } from 'typescript';

describe('writeStderrLine when stderr refuses the lines', () => {
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'stderr-gone-'));
    const source = await readFile(join(__dirname, 'stderr-line.ts'), 'utf8');
    const compiled = transpileModule(source, { compilerOptions: { module: ModuleKind.CommonJS, target: ScriptTarget.ES2022 } });
    await writeFile(join(work, 'stderr-line.js'), compiled.outputText);
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('does not answer lines that reached no reader as taken, and counts them', async () => {
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
        const { writeStderrLine, stderrLinesTaken, stderrBacklog } = require('./stderr-line.js');
        let lines = 0;
        // 1 MiB waiting in memory behind a pipe nobody reads.
        while (process.stderr.writableLength < 1024 * 1024) {
          writeStderrLine(JSON.stringify({ event: 'audit.buffered', i: lines, pad: 'x'.repeat(1000) }));
          lines += 1;
        }
        const queuedBytes = process.stderr.writableLength;
        process.stdout.write(JSON.stringify({ queued: lines, queuedBytes }) + '\\n');
        // The parent closes its end on that line; then the wait for the lines answers.
        process.stdin.once('data', () =>
          Promise.resolve(stderrLinesTaken(10000)).then((taken) => {
            process.stdout.write(JSON.stringify({ taken, ...stderrBacklog() }) + '\\n');
            process.exit(0);
          }),
        );
      `,
      ],
      { cwd: work, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    child.stderr.pause();
    const reports: Record<string, unknown>[] = [];
    let stdout = '';
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      const complete = stdout.split('\n');
      stdout = complete.pop() ?? '';
      for (const line of complete) {
        reports.push(JSON.parse(line) as Record<string, unknown>);
        if (reports.length === 1) {
          // The reader goes away (its end of the pipe closed) with the lines still waiting.
          child.stderr.destroy();
          child.stdin.write('go\n');
        }
      }
    });
    expect(await closed).toBe(0);
    const [queued, after] = reports as [{ queued: number; queuedBytes: number }, { taken: boolean; droppedLines: number }];
    expect(queued.queuedBytes).toBeGreaterThan(900 * 1024);
    // Not one of the waiting lines reached a reader: they are not "taken", and they are counted.
    expect({ taken: after.taken, counted: after.droppedLines > 0 }).toEqual({ taken: false, counted: true });
  }, 30_000);

  it('does not answer lines a full disk refused (stderr a file on /dev/full) as taken, and counts them', async () => {
    const full = await open('/dev/full', 'w');
    try {
      const child = spawn(
        process.execPath,
        [
          '-e',
          `
          const { writeStderrLine, stderrLinesTaken, stderrBacklog } = require('./stderr-line.js');
          const written = [];
          for (let i = 0; i < 10; i += 1) written.push(writeStderrLine(JSON.stringify({ event: 'audit.buffered', i })));
          Promise.resolve(stderrLinesTaken(2000)).then((taken) => process.stdout.write(JSON.stringify({ written, taken, ...stderrBacklog() }) + '\\n'));
        `,
        ],
        { cwd: work, stdio: ['ignore', 'pipe', full.fd] },
      );
      let stdout = '';
      child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
      const report = JSON.parse(stdout) as { written: boolean[]; taken: boolean; droppedLines: number };
      // The disk took none of the 10 lines: they are not "taken", and they are counted.
      expect({ taken: report.taken, counted: report.droppedLines > 0 }).toEqual({ taken: false, counted: true });
    } finally {
      await full.close();
    }
  }, 30_000);
});
