import ts from 'typescript';

/** One exported symbol of an entry point, and what its doc comment lacks. */
export interface UndocumentedExport {
  entry: string;
  name: string;
  /** `no doc comment`, or `no @example`. */
  lacks: string;
}

/**
 * The exports of `entries` (paths of the package's entry points) whose declaration has no doc
 * comment, or one without an `@example`. An export declared more than once (a class and its
 * merged interface, overloads) needs it on one of its declarations.
 *
 * @example
 * undocumentedExports(['/repo/src/audit/index.ts']); // [] when every export has its example
 */
export function undocumentedExports(entries: string[], options: ts.CompilerOptions = {}, host?: ts.CompilerHost): UndocumentedExport[] {
  const program = ts.createProgram(
    entries,
    { noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, experimentalDecorators: true, ...options },
    host,
  );
  const checker = program.getTypeChecker();
  const found: UndocumentedExport[] = [];
  for (const entry of entries) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!);
    if (!module) throw new Error(`${entry} is not a module`);
    for (const exported of checker.getExportsOfModule(module)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const declarations = symbol.declarations ?? [];
      const docs = declarations.flatMap((declaration) => {
        // A variable's comment sits on its statement; a `const { a, b } = …` has none of its own.
        const holder = ts.isVariableDeclaration(declaration) ? declaration.parent.parent : declaration;
        return ts.getJSDocCommentsAndTags(holder).filter((node): node is ts.JSDoc => ts.isJSDoc(node));
      });
      const name = exported.name;
      if (docs.length === 0) found.push({ entry, name, lacks: 'no doc comment' });
      else if (!docs.some((doc) => (doc.tags ?? []).some((tag) => tag.tagName.text === 'example'))) {
        found.push({ entry, name, lacks: 'no @example' });
      }
    }
  }
  return found;
}
