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
  return parseCommandLine(argv, options, false).values;
}

/**
 * {@link parseCommandArgs} for a command that also takes positionals (`audit-replay`'s paths).
 *
 * @example
 * const { values, positionals } = parseCommandLine(['--timeout-ms', '5000', 'spool/'], { ...TIMEOUT_OPTION }, true);
 */
export function parseCommandLine<const T extends Options>(
  argv: string[],
  options: T,
  allowPositionals: boolean,
): { values: Values<T>; positionals: string[] } {
  const { values, positionals, tokens } = parseArgs({ args: argv, options, allowPositionals, tokens: true });
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option' || options[token.name]?.multiple) continue;
    if (seen.has(token.name)) throw new Error(`--${token.name} was given more than once: give it once`);
    seen.add(token.name);
  }
  return { values: values as Values<T>, positionals };
}

/** `--timeout-ms` when not given: how long every command waits for a database that does not answer. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** The `--timeout-ms` option, as every command declares it. */
export const TIMEOUT_OPTION = { 'timeout-ms': { type: 'string' } } as const;

/** Exit status of every command whose database did not answer within `--timeout-ms` (docs/FAILURES.md). */
export const TIMEOUT_EXIT_STATUS = 3;

/** The usage lines of `--timeout-ms`, the same in every command. */
export const TIMEOUT_USAGE = `  --timeout-ms <ms>        the longest wait for a connection, and for a database that answers nothing
                           (when it does not say a statement is still running); default ${DEFAULT_TIMEOUT_MS}`;

/**
 * The value of `--timeout-ms`: a whole number of milliseconds from 100 to 3 600 000, or
 * {@link DEFAULT_TIMEOUT_MS} when not given.
 *
 * @example
 * parseTimeoutMs(undefined); // 30000
 * parseTimeoutMs('5000'); // 5000
 */
export function parseTimeoutMs(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_MS;
  const ms = /^\d{1,7}$/.test(text) ? Number(text) : NaN;
  if (!(ms >= 100 && ms <= 3_600_000)) {
    throw new Error(`--timeout-ms must be a whole number of milliseconds from 100 to 3600000, got ${JSON.stringify(text)}`);
  }
  return ms;
}
