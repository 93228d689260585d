import { resolve } from 'node:path';

/**
 * This process's one account of a spool directory that its writers share (the spool, the
 * quarantine, a second spool on the same path): what they added to it, and their turns. A writer
 * decides whether its bytes fit `spoolMaxBytes` and writes them within one {@link turn}, so no
 * other writer of the process decides in between on a count that misses them; and it reports
 * them with {@link wrote}, so that a writer that counted the directory earlier (the spool, whose
 * open segment's room was counted before its first line) adds what the others wrote since.
 *
 * @example
 * const ledger = directoryLedger('/var/spool/audit');
 * await ledger.turn(async () => {
 *   if ((await used()) + buffer.length > maxBytes) throw new Error('spool_full');
 *   await write(buffer);
 *   ledger.wrote(buffer.length);
 * });
 */
export class DirectoryLedger {
  private added = 0;
  private turns: Promise<unknown> = Promise.resolve();

  /** Bytes this process's writers added to the directory since start, its files deleted since or not. */
  get written(): number {
    return this.added;
  }

  /** Reports bytes a writer added (or may have added: a write that failed midway counts whole). */
  wrote(bytes: number): void {
    this.added += bytes;
  }

  /** Runs `step` once no other writer's step is running; steps run one at a time, in order. */
  turn<T>(step: () => Promise<T>): Promise<T> {
    const result = this.turns.then(step);
    this.turns = result.catch(() => undefined);
    return result;
  }
}

const ledgers = new Map<string, DirectoryLedger>();

/**
 * The ledger of the spool directory `dir`, one per directory in the process, kept for the life of
 * the process (its writers hold marks against {@link DirectoryLedger.written}).
 *
 * @example
 * directoryLedger('/var/spool/audit') === directoryLedger('/var/spool/audit/'); // true
 */
export function directoryLedger(dir: string): DirectoryLedger {
  const key = resolve(dir);
  let ledger = ledgers.get(key);
  if (!ledger) ledgers.set(key, (ledger = new DirectoryLedger()));
  return ledger;
}
