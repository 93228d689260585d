/** A savepoint command sent as SQL: `SAVEPOINT name`, `ROLLBACK TO [SAVEPOINT] name` or `RELEASE [SAVEPOINT] name`. */
export interface SavepointCommand {
  kind: 'savepoint' | 'rollback-to' | 'release';
  /** As PostgreSQL names it: an unquoted name folded to lower case, a quoted one as written. */
  name: string;
}

const NAME = String.raw`("(?:[^"]|"")+"|[A-Za-z_][\w$]*)`;
const COMMANDS: [SavepointCommand['kind'], RegExp][] = [
  ['savepoint', new RegExp(String.raw`^savepoint\s+${NAME}$`, 'i')],
  ['rollback-to', new RegExp(String.raw`^rollback(?:\s+(?:work|transaction))?\s+to\s+(?:savepoint\s+)?${NAME}$`, 'i')],
  ['release', new RegExp(String.raw`^release\s+(?:savepoint\s+)?${NAME}$`, 'i')],
];

/** The query without leading white space and comments, and without a trailing `;`. */
function statementOf(query: string): string {
  let rest = query;
  for (;;) {
    const trimmed = rest.trimStart();
    if (trimmed.startsWith('--')) rest = trimmed.slice(trimmed.indexOf('\n') === -1 ? trimmed.length : trimmed.indexOf('\n'));
    else if (trimmed.startsWith('/*')) rest = trimmed.slice(trimmed.indexOf('*/') === -1 ? trimmed.length : trimmed.indexOf('*/') + 2);
    else return withoutTrailingSemicolon(trimmed);
  }
}

/** `text` without trailing white space and one trailing `;` (a pass over the text: no pattern that backtracks on long runs of blanks). */
function withoutTrailingSemicolon(text: string): string {
  const end = text.trimEnd();
  return end.endsWith(';') ? end.slice(0, -1).trimEnd() : end;
}

const CHAINED = /^(?:commit|end|rollback|abort)(?:\s+(?:work|transaction))?\s+and\s+chain$/i;

/**
 * Whether `query` is one `COMMIT AND CHAIN` or `ROLLBACK AND CHAIN` (or `END` / `ABORT`): it ends
 * the block and opens the next at once, so the connection's status stays in a block.
 *
 * @example
 * endsAndChains('commit and chain;'); // true
 */
export function endsAndChains(query: string): boolean {
  return CHAINED.test(statementOf(query));
}

/**
 * The savepoint command `query` is, when it is one statement of that kind (any case, after white
 * space and comments); undefined for anything else, a multi-statement string included.
 *
 * @example
 * savepointCommand('  rollback to savepoint S1;'); // { kind: 'rollback-to', name: 's1' }
 */
export function savepointCommand(query: string): SavepointCommand | undefined {
  const statement = statementOf(query);
  for (const [kind, pattern] of COMMANDS) {
    const name = pattern.exec(statement)?.[1];
    if (name === undefined) continue;
    return { kind, name: name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name.toLowerCase() };
  }
  return undefined;
}
