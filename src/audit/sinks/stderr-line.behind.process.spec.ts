import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModuleKind, ScriptTarget, transpileModule } from 'typescript';

// The line writer in a real process whose stderr is a pipe the reader leaves full (a log driver
// behind), then catches up on: what waits in the process's memory, and what a wait for it answers.
describe('writeStderrLine behind a reader that stops, then catches up', () => {
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'stderr-behind-'));
    const source = await readFile(join(__dirname, 'stderr-line.ts'), 'utf8');
    const compiled = transpileModule(source, { compilerOptions: { module: ModuleKind.CommonJS, target: ScriptTarget.ES2022 } });
    await writeFile(join(work, 'stderr-line.js'), compiled.outputText);
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  /**
   * Runs `script` with its stderr a pipe read only once the child has written its first stdout
   * line (the reader catches up then); the child's stdout lines (JSON) and its stderr lines.
   */
  const run = (script: string) =>
    new Promise<{ reports: Record<string, unknown>[]; lines: Record<string, unknown>[] }>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stderr.pause();
      let reading = false;
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        stdout += text;
        if (reading || !stdout.includes('\n')) return;
        reading = true;
        child.stderr.setEncoding('utf8').on('data', (more: string) => (stderr += more));
        child.stderr.resume();
      });
      child.on('error', reject);
      child.on('close', (code) => {
        if (code !== 0) return reject(new Error(`child ended with ${code}: ${stdout}`));
        const parse = (text: string) =>
          text
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line) as Record<string, unknown>);
        resolve({ reports: parse(stdout), lines: parse(stderr) });
      });
    });

  it('keeps at most the bound of lines in memory; the lines past it are counted, and the next line written says how many', async () => {
    const bound = 256 * 1024;
    const { reports, lines } = await run(`
      const { writeStderrLine, stderrBacklog, stderrLinesTaken } = require('./stderr-line.js');
      const line = (i) => JSON.stringify({ event: 'audit.buffered', i, pad: 'x'.repeat(4000) });
      let written = 0;
      for (let i = 0; i < 2500; i += 1) if (writeStderrLine(line(i), ${bound})) written += 1;
      process.stdout.write(JSON.stringify({ queuedBytes: process.stderr.writableLength, written, ...stderrBacklog() }) + '\\n');
      Promise.resolve(stderrLinesTaken(60000, true)).then(() => writeStderrLine(line('after'), ${bound}));
    `);
    const [{ queuedBytes, written, droppedLines }] = reports as { queuedBytes: number; written: number; droppedLines: number }[];
    // 2500 lines of 4 KiB (10 MiB) to a pipe nobody reads: within the bound and one line.
    expect(queuedBytes).toBeLessThanOrEqual(bound + 4100);
    expect(droppedLines).toBeGreaterThan(2000);
    expect(written + droppedLines).toBe(2500);
    expect(lines.map((l) => l.i ?? l.event)).toEqual([...Array.from({ length: written }, (_, i) => i), 'audit.stderr_behind', 'after']);
    expect(lines[written]).toMatchObject({ level: 'error', reason: 'queue_full', droppedLines });
  }, 30_000);

  it('answers a wait for the lines when the reader takes them, false at its bound, then false at once while that line still waits', async () => {
    const { reports } = await run(`
      const { writeStderrLine, stderrLinesTaken } = require('./stderr-line.js');
      // 1 MiB waiting: more than the pipe and the paused reader's own buffer take before it stops reading.
      for (let i = 0; process.stderr.writableLength < 1024 * 1024; i += 1) writeStderrLine(JSON.stringify({ i, pad: 'x'.repeat(1000) }));
      const answers = {};
      Promise.resolve(stderrLinesTaken(100)).then((first) => {
        answers.first = first;
        answers.second = stderrLinesTaken(100);
        process.stdout.write(JSON.stringify(answers) + '\\n');
        return stderrLinesTaken(60000, true);
      }).then((last) => {
        process.stdout.write(JSON.stringify({ last, afterwards: stderrLinesTaken(100) }) + '\\n');
      });
    `);
    expect(reports).toEqual([
      { first: false, second: false },
      { last: true, afterwards: true },
    ]);
  }, 30_000);
});
