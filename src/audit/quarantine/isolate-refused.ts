import { isContentError } from '../db-error';

/** A record the database refused for its content, with the error it gave. */
export interface RefusedRecord<T> {
  record: T;
  error: unknown;
}

/**
 * Inserts `records` with `insert`; when the database refuses the batch for its content (see
 * {@link isContentError}), splits it in halves, recursively, until each refused record stands
 * alone. Resolves once every other record has committed, with the refused ones and their errors.
 * Rejects with the first error that is not about content (connection, timeout, lock…): records of
 * sub-batches that committed before it stay committed, so the caller retries the whole batch and
 * relies on the insert being idempotent (ON CONFLICT (id) DO NOTHING).
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
  insert: (batch: T[]) => Promise<void>,
  isContent: (error: unknown) => boolean = isContentError,
): Promise<{ refused: RefusedRecord<T>[] }> {
  const refused: RefusedRecord<T>[] = [];
  if (records.length > 0) await settle([...records], insert, isContent, refused);
  return { refused };
}

async function settle<T>(
  batch: T[],
  insert: (batch: T[]) => Promise<void>,
  isContent: (error: unknown) => boolean,
  refused: RefusedRecord<T>[],
): Promise<void> {
  try {
    await insert(batch);
    return;
  } catch (error) {
    if (!isContent(error)) throw error;
    if (batch.length === 1) {
      refused.push({ record: batch[0], error });
      return;
    }
  }
  const middle = Math.ceil(batch.length / 2);
  await settle(batch.slice(0, middle), insert, isContent, refused);
  await settle(batch.slice(middle), insert, isContent, refused);
}
