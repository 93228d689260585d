import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModuleKind, transpileModule } from 'typescript';

// docs/FAILURES.md "Safe output": each stderr line is one write, and the lines of one process
// never interleave, whatever their length, also when the reader falls behind and the pipe fills.
// (Processes sharing one pipe get no such promise: Node hands the lines queued behind a full pipe
// to one writev, which the kernel keeps whole only up to PIPE_BUF, 4 KiB; the docs say so.)
describe('audit stderr lines read whole from a pipe', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'stderr-lines-'));
    const source = readFileSync(join(__dirname, '../src/audit/sinks/stderr-line.ts'), 'utf8');
    writeFileSync(join(dir, 'stderr-line.js'), transpileModule(source, { compilerOptions: { module: ModuleKind.CommonJS } }).outputText);
    // `node writer.js <name> <lines> <bytes>`: lines of <bytes> bytes, newline included (one in ten; the others up to 900 bytes shorter).
    // All of them may wait in memory (10 MB here): the bound of that queue has its own test (stderr-line.behind.process.spec.ts).
    writeFileSync(
      join(dir, 'writer.js'),
      [
        "const { writeStderrLine } = require('./stderr-line.js');",
        'const [name, count, bytes] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];',
        'for (let i = 0; i < count; i++) {',
        "  const head = JSON.stringify({ event: 'audit.buffered', writer: name, i, note: '' });",
        '  const size = i % 10 === 9 ? bytes : bytes - 1 - (i % 10) * 100;',
        '  writeStderrLine(head.replace(\'"note":""\', `"note":"${\'x\'.repeat(size - 1 - head.length)}"`), Infinity);',
        '}',
      ].join('\n'),
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `command` in `dir` with a collector that reads its stderr pipe a little behind (the pipe fills, writers wait); the lines read. */
  async function readLines(command: string): Promise<{ lines: number; whole: Record<string, number> }> {
    const child = spawn('sh', ['-c', command], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      child.stderr.pause();
      setTimeout(() => child.stderr.resume(), 1);
    });
    await new Promise((resolve) => child.on('close', resolve));
    const lines = Buffer.concat(chunks)
      .toString('utf8')
      .split('\n')
      .filter((line) => line !== '');
    const whole: Record<string, number> = {};
    for (const line of lines) {
      try {
        const { event, writer } = JSON.parse(line) as { event?: string; writer: string };
        if (event === 'audit.buffered') whole[writer] = (whole[writer] ?? 0) + 1;
      } catch {
        // A broken line: counted in `lines`, not in `whole`.
      }
    }
    return { lines: lines.length, whole };
  }

  it('keeps every line of one process whole, lines of 100 KB included', async () => {
    const node = JSON.stringify(process.execPath);
    const result = await readLines(`${node} writer.js A 100 100000`);
    expect(result).toEqual({ lines: 100, whole: { A: 100 } });
  }, 60_000);
});
