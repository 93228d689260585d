import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModuleKind, transpileModule } from 'typescript';

// Probe (A13): docs/FAILURES.md "Safe output": "The stderr lines are written with
// `process.stderr.write` (one write a line, so lines of several writers never interleave)". The
// processes of one app (cluster workers, the shared spool's sharers) inherit one stderr pipe. A line
// longer than the pipe takes at once (PIPE_BUF, 4 KiB, for an atomic write; 64 KiB of capacity)
// is written in pieces, and another process's pieces land between them: a collector reading the
// pipe gets lines that are no JSON, and loses both entries.
describe('probe: audit lines of two processes sharing one stderr pipe', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'probe-stderr-'));
    const source = readFileSync(join(__dirname, '../src/audit/sinks/stderr-line.ts'), 'utf8');
    writeFileSync(join(dir, 'stderr-line.js'), transpileModule(source, { compilerOptions: { module: ModuleKind.CommonJS } }).outputText);
    // One writer: 50 audit.buffered lines of an entry near the default maxEntryBytes (64 KiB), written as the module writes them.
    writeFileSync(
      join(dir, 'writer.js'),
      [
        "const { writeStderrLine } = require('./stderr-line.js');",
        'for (let i = 0; i < 50; i++)',
        "  writeStderrLine(JSON.stringify({ event: 'audit.buffered', writer: process.argv[2], i, entry: { changes: { note: 'x'.repeat(100_000) } } }));",
      ].join('\n'),
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads every line whole: 100 JSON lines, 50 of each writer', async () => {
    const node = JSON.stringify(process.execPath);
    const child = spawn('sh', ['-c', `${node} writer.js A & ${node} writer.js B & wait`], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const chunks: Buffer[] = [];
    // A collector that reads a little behind, as any does on a busy machine: the pipe fills, and both writers wait for room.
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
    const whole = lines.filter((line) => {
      try {
        return (JSON.parse(line) as { event?: string }).event === 'audit.buffered';
      } catch {
        return false;
      }
    });
    expect({ lines: lines.length, whole: whole.length }).toEqual({ lines: 100, whole: 100 });
  }, 60_000);
});
