import { resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(__dirname, '../..');

/**
 * How documentation examples are compiled: strict, as a new Nest app would, with the package's
 * names mapped to the module's own sources.
 */
export const EXAMPLE_COMPILER_OPTIONS: ts.CompilerOptions = {
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

/**
 * A compiler host that sees `files` (path → text, changeable between programs) as if they were on
 * disk, beside the real files, whose parsed forms it keeps for the next program.
 *
 * @example
 * const program = ts.createProgram([...files.keys()], EXAMPLE_COMPILER_OPTIONS, exampleHost(files));
 */
export function exampleHost(files: Map<string, string>): ts.CompilerHost {
  const host = ts.createCompilerHost(EXAMPLE_COMPILER_OPTIONS);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  const parsed = new Map<string, ts.SourceFile | undefined>();
  host.fileExists = (file) => files.has(file) || ts.sys.fileExists(file);
  host.directoryExists = (path) => [...files.keys()].some((file) => file.startsWith(`${path}/`)) || ts.sys.directoryExists(path);
  host.readFile = (file) => files.get(file) ?? readFile(file);
  host.getSourceFile = (file, language) => {
    const text = files.get(file);
    if (text !== undefined) return ts.createSourceFile(file, text, language, true);
    if (!parsed.has(file)) parsed.set(file, getSourceFile(file, language));
    return parsed.get(file);
  };
  return host;
}
