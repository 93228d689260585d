import { isContentError, isPartitionRouting } from '../db-error';

/** A record the database refused for its content, with the error it gave. */
export interface RefusedRecord<T> {
  record: T;
  error: unknown;
}

/**
 * Inserts `records` with `insert`; when the database refuses the batch for its content (see
 * {@link isContentError}), splits it in halves, recursively, until each refused record stands
 * alone. Resolves once every other record has committed, with the refused ones and their errors.
 * `insert` is told whether it writes the batch itself (`false`) or a part of its split (`true`),
 * so that the split can run under a budget of its own (see {@link splitBudgetMs}).
 * A batch refused for the partitions it was routed to (see {@link isPartitionRouting}) is inserted
 * once more at once; refused again, it fails as the database's error, never as content.
 * Rejects with the first error that is not about content (connection, timeout, lock…): records of
 * sub-batches that committed before it stay committed, so the caller retries the whole batch and
 * relies on the insert being idempotent (ON CONFLICT DO NOTHING on the key (id, occurred_at)).
 *
 * Round trips, one at a time: 1 when the batch commits; with k refused records among n, at most
 * 1 + 2·k·⌈log2 n⌉ (each refused record fails one insert per level of halving); never more than
 * 2n − 1 (every record refused). For 500 records and one refused: at most 19.
 *
 * @example
 * const { refused } = await isolateRefused(records, (batch) => writer.insert(batch));
 * if (refused.length > 0) await quarantine.put(refused);
 */
export async function isolateRefused<T>(
  records: readonly T[],
  insert: (batch: T[], splitting: boolean) => Promise<void>,
  isContent: (error: unknown) => boolean = isContentError,
): Promise<{ refused: RefusedRecord<T>[] }> {
  const refused: RefusedRecord<T>[] = [];
  if (records.length > 0) await settle([...records], insert, isContent, refused);
  return { refused };
}

async function settle<T>(
  batch: T[],
  insert: (batch: T[], splitting: boolean) => Promise<void>,
  isContent: (error: unknown) => boolean,
  refused: RefusedRecord<T>[],
  splitting = false,
): Promise<void> {
  try {
    await insert(batch, splitting);
    return;
  } catch (error) {
    // Routed to a partition whose bounds changed while the insert waited: once more, routed afresh.
    if (isPartitionRouting(error)) return insert(batch, splitting);
    if (!isContent(error)) throw error;
    if (batch.length === 1) {
      refused.push({ record: batch[0], error });
      return;
    }
  }
  const middle = Math.ceil(batch.length / 2);
  await settle(batch.slice(0, middle), insert, isContent, refused, true);
  await settle(batch.slice(middle), insert, isContent, refused, true);
}

/**
 * The time a split of `entries` may take in all, from the refusal that starts it: `writeTimeoutMs`
 * per level of halving (⌈log2 entries⌉ levels, each costing two round trips per refused entry),
 * at least `writeTimeoutMs`. A batch's first INSERT is bounded by its entries' own deadline; the
 * split that follows has this budget of its own, so that one refused entry on a slow database
 * is isolated instead of turning the service down.
 *
 * @example
 * splitBudgetMs(300, 2000); // 18000 (9 levels)
 */
export function splitBudgetMs(entries: number, writeTimeoutMs: number): number {
  return writeTimeoutMs * Math.max(1, Math.ceil(Math.log2(Math.max(1, entries))));
}
