import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { entryKey } from './accounting';

/**
 * The (action, entity id) keys of the entries still in the spool segments of `dirs`: an entry
 * found there after the run is durable but was never replayed into `audit_log`.
 *
 * @example
 * const spooled = await spooledKeys([syncSpoolDir]); // Set { 'nda_created 0193…' }
 */
export async function spooledKeys(dirs: readonly string[]): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const dir of dirs) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.ndjson'))) {
      for (const line of (await readFile(join(dir, name), 'utf8')).split('\n')) {
        const entry = parse(line);
        if (entry?.action && entry.entityId) keys.add(entryKey(entry.action, entry.entityId));
      }
    }
  }
  return keys;
}

/** Spool segment files and their entries, per directory, for the report. */
export async function spoolInventory(dirs: readonly string[]): Promise<{ dir: string; files: number; entries: number }[]> {
  return Promise.all(
    dirs.map(async (dir) => {
      const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.ndjson'));
      let entries = 0;
      for (const name of names) entries += (await readFile(join(dir, name), 'utf8')).split('\n').filter((l) => l !== '').length;
      return { dir, files: names.length, entries };
    }),
  );
}

function parse(line: string): { action?: string; entityId?: string } | undefined {
  try {
    return (JSON.parse(line) as { entry?: { action?: string; entityId?: string } }).entry;
  } catch {
    return undefined;
  }
}
