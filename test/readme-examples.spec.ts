import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { readmeBlocks } from './support/readme-blocks';

const root = resolve(__dirname, '..');

// Every TypeScript example in the README compiles as written, under strict, against the module's
// own sources (imported under the package's names) and the project's dependencies.
describe('the README examples', () => {
  const blocks = readmeBlocks();
  const dir = join(root, 'test', 'readme-examples');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node', 'jest'],
    baseUrl: root,
    paths: {
      'nestjs-failsafe-audit': ['src/audit/index.ts'],
      'nestjs-failsafe-audit/testing': ['src/audit/testing/index.ts'],
    },
  };
  const files = new Map(blocks.map((b) => [join(dir, b.path), b.code]));
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.fileExists = (file) => files.has(file) || ts.sys.fileExists(file);
  host.directoryExists = (path) => [...files.keys()].some((file) => file.startsWith(`${path}/`)) || ts.sys.directoryExists(path);
  host.readFile = (file) => files.get(file) ?? readFile(file);
  host.getSourceFile = (file, language) =>
    files.has(file) ? ts.createSourceFile(file, files.get(file)!, language, true) : getSourceFile(file, language);
  const program = ts.createProgram([...files.keys()], options, host);

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
