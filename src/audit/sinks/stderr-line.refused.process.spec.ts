// docs/FAILURES.md, "A slow or stuck stderr": a line is safe from the process's end once stderr
// has taken it, and a line stderr refuses is not taken. Lines waiting in memory when the pipe's
// reader goes away (EPIPE), and lines a stderr file on a full disk refuses (ENOSPC), are counted
// in `droppedLines` (`stderrDropped` on /health), and the wait for the lines answers false, so
// that sync mode counts such entries in `stderrLate` rather than answering them as on stderr.
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
