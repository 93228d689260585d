import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { EXAMPLE_COMPILER_OPTIONS, exampleHost } from './support/example-compiler';
import { readmeBlocks } from './support/readme-blocks';

const root = resolve(__dirname, '..');

// Every TypeScript example in the README compiles as written, under strict, against the module's
// own sources (imported under the package's names) and the project's dependencies.
describe('the README examples', () => {
  const blocks = readmeBlocks();
  const dir = join(root, 'test', 'readme-examples');
  const files = new Map(blocks.map((b) => [join(dir, b.path), b.code]));
  const program = ts.createProgram([...files.keys()], EXAMPLE_COMPILER_OPTIONS, exampleHost(files));

  it('has TypeScript examples', () => {
    expect(blocks.length).toBeGreaterThan(3);
    expect(dirname([...files.keys()][0])).toBe(join(dir, 'src'));
  });

  it.each(blocks.map((b) => [b.line, b.path] as const))('README.md:%i (%s) compiles under strict', (_line, path) => {
    const file = program.getSourceFile(join(dir, path))!;
    const diagnostics = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
    expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
  });
});
