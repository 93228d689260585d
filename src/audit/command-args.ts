import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<T extends Options> = ReturnType<typeof parseArgs<{ options: T; allowPositionals: false; tokens: true }>>['values'];

/**
 * The options of a command line, as `node:util`'s `parseArgs` reads them (no positionals), except
 * that an option not declared `multiple` and given twice is refused: `parseArgs` would keep the
 * last one silently, and a command such as `audit-verify --public-key a --public-key b` must not
 * check against a key its operator did not mean.
 *
 * @example
 * const { month, out } = parseCommandArgs(['--month', '2026-01', '--out', 'dir'], { month: { type: 'string' }, out: { type: 'string' } });
 */
export function parseCommandArgs<const T extends Options>(argv: string[], options: T): Values<T> {
  const { values, tokens } = parseArgs({ args: argv, options, allowPositionals: false, tokens: true });
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option' || options[token.name]?.multiple) continue;
    if (seen.has(token.name)) throw new Error(`--${token.name} was given more than once: give it once`);
    seen.add(token.name);
  }
  return values;
}
