import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

/**
 * Every option path of the module's options: the properties of `AuditModuleOptions` and
 * `AuditModuleExtras`, and those of each nested option type (an object type whose name ends in
 * `Options`, such as `integrity.enabled`), parents included.
 *
 * @example
 * optionPaths('/repo/src/audit/index.ts').has('integrity.entryKeys'); // true
 */
export function optionPaths(entry: string): Set<string> {
  const program = ts.createProgram([entry], { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const exported = new Map(checker.getExportsOfModule(module).map((s) => [s.name, s]));
  const paths = new Set<string>();
  const walk = (type: ts.Type, prefix: string): void => {
    for (const property of type.getProperties()) {
      const path = `${prefix}${property.name}`;
      paths.add(path);
      const declaration = property.valueDeclaration ?? property.declarations?.[0];
      if (!declaration) continue;
      const own = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(property, declaration));
      const name = (own.aliasSymbol ?? own.getSymbol())?.name ?? '';
      if (/Options$/.test(name)) walk(own, `${path}.`);
    }
  };
  for (const name of ['AuditModuleOptions', 'AuditModuleExtras']) {
    const symbol = exported.get(name);
    if (!symbol) throw new Error(`${entry} does not export ${name}`);
    walk(checker.getDeclaredTypeOfSymbol(checker.getAliasedSymbol(symbol)), '');
  }
  return paths;
}

/**
 * The environment variables a tree of TypeScript sources reads (specs left out): `env.NAME`,
 * `process.env.NAME`, `env['NAME']`, and a helper called as `helper(env, 'NAME', …)`. Comments are
 * not code, so a variable named only in an example is not counted.
 *
 * @example
 * environmentVariables('/repo/src').has('AUDIT_TABLE'); // true
 */
export function environmentVariables(dir: string): Set<string> {
  const names = new Set<string>();
  const isEnv = (node: ts.Node) => /^(process\.)?env$/.test(node.getText());
  for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || file.endsWith('.spec.ts') || file.endsWith('.d.ts')) continue;
    const source = ts.createSourceFile(file, readFileSync(join(dir, file), 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isPropertyAccessExpression(node) && isEnv(node.expression)) names.add(node.name.text);
      if (ts.isElementAccessExpression(node) && isEnv(node.expression) && ts.isStringLiteral(node.argumentExpression)) {
        names.add(node.argumentExpression.text);
      }
      if (ts.isCallExpression(node) && node.arguments.length >= 2 && isEnv(node.arguments[0]) && ts.isStringLiteral(node.arguments[1])) {
        names.add(node.arguments[1].text);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return names;
}

/**
 * The names in the first column of the tables in one `## ` section of a Markdown text, as written
 * between backticks (`` `integrity.enabled` ``; a cell may list several, comma-separated).
 *
 * @example
 * tableNames(readFileSync('docs/CONFIGURATION.md', 'utf8'), 'Environment variables').has('PORT');
 */
export function tableNames(markdown: string, section: string): Set<string> {
  const names = new Set<string>();
  let inside = false;
  for (const line of markdown.split('\n')) {
    if (/^## /.test(line)) inside = line.slice(3).trim() === section;
    if (!inside || !line.startsWith('|')) continue;
    const cell = line.split('|')[1];
    for (const match of cell.matchAll(/`([^`]+)`/g)) names.add(match[1]);
  }
  return names;
}
