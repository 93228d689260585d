import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { EXAMPLE_COMPILER_OPTIONS, exampleHost } from './support/example-compiler';
import { documentationFiles, readmeBlocks } from './support/readme-blocks';

const root = resolve(__dirname, '..');

// Every TypeScript example in the README and in docs/*.md compiles as written, under strict,
// against the module's own sources (imported under the package's names) and the project's
// dependencies. Each Markdown file is an app of its own, so two files may show the same path.
describe('the documentation examples', () => {
  const dir = join(root, 'test', 'readme-examples');
  const examples = documentationFiles().flatMap((doc) =>
    readmeBlocks(doc).map((b) => ({ doc, line: b.line, path: join(dir, doc.replace(/\W/g, '_'), b.path), code: b.code })),
  );
  const files = new Map(examples.map((e) => [e.path, e.code]));
  const program = ts.createProgram([...files.keys()], EXAMPLE_COMPILER_OPTIONS, exampleHost(files));

  it('has TypeScript examples in the README, the five steps among them, and in the guide', () => {
    const readme = readmeBlocks();
    expect(readme.map((b) => b.path)).toEqual(
      expect.arrayContaining([
        'src/app.module.ts',
        'src/ndas.controller.ts',
        'src/nda-signing.service.ts',
        'src/health.controller.ts',
        'test/audit-outage.e2e-spec.ts',
      ]),
    );
    expect(readmeBlocks('docs/GUIDE.md').length).toBeGreaterThan(5);
    expect(dirname(examples.find((e) => e.doc === 'README.md')!.path)).toBe(join(dir, 'README_md', 'src'));
    expect(files.size).toBe(examples.length);
  });

  it.each(examples.map((e) => [`${e.doc}:${e.line}`, e.path] as const))('%s compiles under strict', (_at, path) => {
    const file = program.getSourceFile(path)!;
    const diagnostics = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
    expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
  });
});
