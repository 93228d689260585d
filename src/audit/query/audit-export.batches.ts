/** Most rows per FETCH: one batch of the stream. */
export const EXPORT_BATCH = 2000;
/** Most weight of one batch (about the UTF-16 units it formats to): 2000 rows of 2 KB; fewer rows when they are larger. */
export const EXPORT_BATCH_CHARS = 4 * 1024 * 1024;

/**
 * The size of each batch of an export, cut from the weights of the rows to come (a cursor of
 * their weights alone, in the export's order, read {@link EXPORT_BATCH} at a time): a batch takes
 * rows while their weights add up to {@link EXPORT_BATCH_CHARS} at most, at least one row, at most
 * {@link EXPORT_BATCH}. So no batch passes the budget by more than one row, however the rows'
 * weight changes along the export.
 *
 * @example
 * const batches = new ExportBatches(async (rows) => weightsOf(await client.query(`FETCH ${rows} FROM audit_export_weights`)));
 * const rows = await batches.next(); // 0 once every row is taken
 */
export class ExportBatches {
  private weights: number[] = [];
  private at = 0;
  private exhausted = false;

  constructor(private readonly fetchWeights: (rows: number) => Promise<number[]>) {}

  /** Rows of the next batch; 0 when none is left. */
  async next(): Promise<number> {
    let rows = 0;
    let weight = 0;
    while (rows < EXPORT_BATCH) {
      if (this.at === this.weights.length) {
        if (this.exhausted) break;
        this.weights = await this.fetchWeights(EXPORT_BATCH);
        this.at = 0;
        this.exhausted = this.weights.length < EXPORT_BATCH;
        continue;
      }
      const next = this.weights[this.at];
      if (rows > 0 && weight + next > EXPORT_BATCH_CHARS) break;
      weight += next;
      rows += 1;
      this.at += 1;
    }
    return rows;
  }

  /** No row is left after the batches already sized. */
  get done(): boolean {
    return this.exhausted && this.at === this.weights.length;
  }
}
