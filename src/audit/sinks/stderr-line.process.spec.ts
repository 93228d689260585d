import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { transpileModule, ModuleKind, ScriptTarget } from 'typescript';

// The line writer in a real process, its stderr a real pipe: what a container's log driver reads.
describe('writeStderrLine in a real process', () => {
  let work: string;
  let child: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'stderr-line-'));
    const source = await readFile(join(__dirname, 'stderr-line.ts'), 'utf8');
    const compiled = transpileModule(source, { compilerOptions: { module: ModuleKind.CommonJS, target: ScriptTarget.ES2022 } });
    await writeFile(join(work, 'stderr-line.js'), compiled.outputText);
    child = join(work, 'child.js');
    await writeFile(
      child,
      `const { writeStderrLine } = require('./stderr-line.js');
setTimeout(() => {
  for (let i = 0; i < 200; i += 1) writeStderrLine(JSON.stringify({ event: 'audit.buffered', i, pad: 'é'.repeat(500) }));
  setTimeout(() => process.stdout.write('still running\\n'), 100);
}, 200);
`,
    );
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  const run = (closeStderr: boolean) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const process_ = spawn(process.execPath, [child], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      process_.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      if (closeStderr) process_.stderr.destroy();
      else process_.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      process_.on('error', reject);
      process_.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  it('writes each line whole and newline-terminated, as console.error did', async () => {
    const { code, stderr } = await run(false);
    expect(code).toBe(0);
    const expected = Array.from({ length: 200 }, (_, i) => `${JSON.stringify({ event: 'audit.buffered', i, pad: 'é'.repeat(500) })}\n`);
    expect(stderr).toBe(expected.join(''));
  }, 30_000);

  it('keeps the process running when stderr is gone (a closed pipe): the lines are dropped, as console.error drops them', async () => {
    const { code, stdout } = await run(true);
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'still running\n' });
  }, 30_000);
});
