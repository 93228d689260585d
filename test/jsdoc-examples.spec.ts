import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { EXAMPLE_COMPILER_OPTIONS, exampleHost } from './support/example-compiler';

const root = resolve(__dirname, '..');
const audit = join(root, 'src', 'audit');
const surface = [join(audit, 'index.ts'), join(audit, 'testing', 'index.ts')];
const packageNames = new Map([
  [surface[0], 'nestjs-failsafe-audit'],
  [surface[1], 'nestjs-failsafe-audit/testing'],
]);

// "Cannot find name" (2552 is the same with a "did you mean", such as `Record` for `record`) and
// "no value in scope for the shorthand property": the names a fragment leaves to its reader.
const NOT_FOUND = new Set([2304, 2552, 18004]);
// A fragment is read as the body of an async function, so it may `await` at its top level, which
// CommonJS output cannot; the awaited expression is still type-checked.
const TOP_LEVEL_AWAIT = new Set([1378, 1432]);

interface Example {
  /** The documented source file. */
  file: string;
  /** The line of the example's first code line in `file` (1-based). */
  line: number;
  code: string;
  /** The file the example is compiled as, beside `file` so that it can import from it. */
  path: string;
}

function examplesOf(file: string, text: string): Example[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false);
  const comments = new Map<number, ts.CommentRange>();
  const visit = (node: ts.Node): void => {
    for (const range of ts.getLeadingCommentRanges(text, node.pos) ?? []) comments.set(range.pos, range);
    ts.forEachChild(node, visit);
  };
  visit(source);
  const examples: Example[] = [];
  for (const range of comments.values()) {
    const comment = text.slice(range.pos, range.end);
    if (!comment.startsWith('/**')) continue;
    const first = source.getLineAndCharacterOfPosition(range.pos).line + 1;
    const lines = comment
      .slice(3, -2)
      .split('\n')
      .map((line, i) => (i === 0 ? line.trim() : line.replace(/^\s*\* ?/, '').trimEnd()));
    for (let i = 0; i < lines.length; i += 1) {
      if (!/^@example\b/.test(lines[i])) continue;
      const body: string[] = [];
      const line = first + i + 1;
      // A JSDoc tag is lower-case; `@Get('health')` in an example is a decorator.
      while (i + 1 < lines.length && !/^@[a-z]/.test(lines[i + 1])) body.push(lines[++i]);
      while (body.length > 0 && body[body.length - 1] === '') body.pop();
      const path = join(dirname(file), `${basename(file, '.ts')}.example-${line}.ts`);
      examples.push({ file, line, code: body.join('\n'), path });
    }
  }
  return examples;
}

/**
 * Type-checks the examples of `sources` (file → text) in two programs: the first finds the names
 * each example leaves undeclared; the second compiles each with those names imported (from the
 * file it documents, else the package's entry points) or declared `any`. Returns each example's
 * remaining diagnostics as `file:line:column TScode message`, the column counted after the ` * `.
 */
function checkExamples(sources: Map<string, string>): { examples: Example[]; diagnostics: Map<Example, string[]> } {
  const examples = [...sources].flatMap(([file, text]) => examplesOf(file, text));
  const files = new Map<string, string>([...sources, ...examples.map((e): [string, string] => [e.path, `${e.code}\nexport {};\n`])]);
  const host = exampleHost(files);
  const roots = () => [...surface, ...sources.keys(), ...examples.map((e) => e.path)];

  const first = ts.createProgram(roots(), EXAMPLE_COMPILER_OPTIONS, host);
  const checker = first.getTypeChecker();
  const exportsOf = (file: string): Set<string> => {
    const source = first.getSourceFile(file);
    const module = source && checker.getSymbolAtLocation(source);
    return new Set(module ? checker.getExportsOfModule(module).map((s) => s.name) : []);
  };
  const surfaceExports = surface.map((file) => [file, exportsOf(file)] as const);
  for (const example of examples) {
    const source = first.getSourceFile(example.path)!;
    const missing = new Set(
      first
        .getSemanticDiagnostics(source)
        .filter((d) => NOT_FOUND.has(d.code) && d.start !== undefined)
        .map((d) => source.text.slice(d.start, d.start! + d.length!)),
    );
    const imports = new Map<string, string[]>();
    const declared: string[] = [];
    const documented = exportsOf(example.file);
    for (const name of missing) {
      const from = documented.has(name)
        ? `./${basename(example.file, '.ts')}`
        : packageNames.get(surfaceExports.find(([, names]) => names.has(name))?.[0] ?? '');
      if (from) imports.set(from, [...(imports.get(from) ?? []), name]);
      else declared.push(`declare const ${name}: any;`);
    }
    // Appended, so that the example's lines keep their numbers.
    const preamble = [...[...imports].map(([from, names]) => `import { ${names.join(', ')} } from '${from}';`), ...declared];
    files.set(example.path, `${example.code}\nexport {};\n${preamble.join('\n')}\n`);
  }

  const second = ts.createProgram(roots(), EXAMPLE_COMPILER_OPTIONS, host, first);
  const diagnostics = new Map<Example, string[]>();
  for (const example of examples) {
    const source = second.getSourceFile(example.path)!;
    const found = [...second.getSyntacticDiagnostics(source), ...second.getSemanticDiagnostics(source)];
    diagnostics.set(
      example,
      found
        .filter((d) => !TOP_LEVEL_AWAIT.has(d.code))
        .map((d) => {
          const { line, character } = source.getLineAndCharacterOfPosition(d.start ?? 0);
          const at = `${relative(root, example.file)}:${example.line + line}:${character + 1}`;
          return `${at} TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
        }),
    );
  }
  return { examples, diagnostics };
}

// A made-up documented file whose examples hold known mistakes: the check must catch them.
const selfCheck = join(audit, 'jsdoc-examples-self-check.ts');
const selfCheckText = [
  '/**',
  ' * Doubles.',
  ' *',
  ' * @example',
  ' * twice(2).toFixed(); // from this file',
  " * new RingBuffer<string>({ capacity: 2, maxBytes: 1024 }).push(item, 1); // from the package; item is the reader's",
  ' * @example',
  ' * twice({ n });',
  ' * items.map((item) => item.id);',
  ' * twice(…);',
  ' */',
  'export function twice(n: number): number {',
  '  return 2 * n;',
  '}',
  '',
].join('\n');

// Every `@example` in the module's JSDoc compiles under strict, with the names it leaves to the
// reader declared (see checkExamples).
describe('the JSDoc examples', () => {
  const sources = new Map<string, string>(
    readdirSync(audit, { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.ts') && !name.endsWith('.spec.ts'))
      .sort()
      .map((name) => [join(audit, name), readFileSync(join(audit, name), 'utf8')]),
  );
  const { examples, diagnostics } = checkExamples(new Map([...sources, [selfCheck, selfCheckText]]));
  const real = examples.filter((e) => e.file !== selfCheck);

  it('finds the examples', () => {
    expect(real.length).toBeGreaterThan(70);
    expect(real.find((e) => e.file === join(audit, 'ring-buffer.ts'))).toMatchObject({
      line: 7,
      code: expect.stringMatching(/^const ring = new RingBuffer<string>\(.*\n.*\n.*\n.*\nring\.toArray\(\); \/\/ \['b', 'c'\]$/),
    });
  });

  it('reports the mistakes of an example at their lines, and nothing else', () => {
    const [good, bad] = examples.filter((e) => e.file === selfCheck);
    expect(diagnostics.get(good)).toEqual([]);
    const found = diagnostics.get(bad)!;
    expect(found.every((d) => d.startsWith('src/audit/jsdoc-examples-self-check.ts:'))).toBe(true);
    expect(new Set(found.map((d) => d.split(':')[1]))).toEqual(new Set(['8', '9', '10']));
    expect(found).toEqual(expect.arrayContaining([expect.stringContaining("TS7006 Parameter 'item' implicitly has an 'any' type")]));
  });

  it.each(real.map((e) => [`${relative(root, e.file)}:${e.line}`, e] as const))('%s compiles under strict', (_at, example) => {
    expect(diagnostics.get(example)).toEqual([]);
  });
});
