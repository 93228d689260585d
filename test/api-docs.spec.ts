import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { undocumentedExports } from './support/api-docs';

const root = resolve(__dirname, '..');
const entries = [join(root, 'src', 'audit', 'index.ts'), join(root, 'src', 'audit', 'testing', 'index.ts')];

// The API reference is the doc comments: every export of the package's two entry points has one,
// with an @example (test/jsdoc-examples.spec.ts compiles the examples).
describe('the API reference', () => {
  it('has a doc comment with an @example on every export of nestjs-failsafe-audit and nestjs-failsafe-audit/testing', () => {
    const found = undocumentedExports(entries);
    expect(found.map((u) => `${relative(root, u.entry)}: ${u.name}: ${u.lacks}`)).toEqual([]);
  });

  it('names an export without a doc comment, and one whose comment has no @example', () => {
    const files = new Map([
      ['/virtual/index.ts', ["export { documented, bare, noExample, listed } from './a';", "export { type Shape } from './a';"].join('\n')],
      [
        '/virtual/a.ts',
        [
          '/**',
          ' * Twice.',
          ' *',
          ' * @example',
          ' * documented(2); // 4',
          ' */',
          'export const documented = (n: number) => 2 * n;',
          'export function bare(): void {}',
          '/** Says nothing of use. */',
          'export class noExample {}',
          '/**',
          ' * Listed.',
          ' *',
          ' * @example',
          ' * const s: Shape = { a: 1 };',
          ' */',
          'export interface Shape { a: number }',
          '/** @example listed[0] */',
          'export const listed = [1];',
        ].join('\n'),
      ],
    ]);
    const host = ts.createCompilerHost({});
    const getSourceFile = host.getSourceFile.bind(host);
    host.fileExists = (file) => files.has(file) || ts.sys.fileExists(file);
    host.directoryExists = (dir) => dir === '/virtual' || ts.sys.directoryExists(dir);
    host.readFile = (file) => files.get(file) ?? ts.sys.readFile(file);
    host.getSourceFile = (file, language) => {
      const text = files.get(file);
      return text === undefined ? getSourceFile(file, language) : ts.createSourceFile(file, text, language, true);
    };
    expect(undocumentedExports(['/virtual/index.ts'], { noLib: true, types: [] }, host)).toEqual([
      { entry: '/virtual/index.ts', name: 'bare', lacks: 'no doc comment' },
      { entry: '/virtual/index.ts', name: 'noExample', lacks: 'no @example' },
    ]);
  });
});
