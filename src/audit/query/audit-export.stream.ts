import { Readable } from 'node:stream';
import { AuditReadError } from '../audit.errors';
import { type AuditReader, lastRows, type ReadClient } from './audit-reader';
import { exportHeader, exportLines } from './audit-export.format';
import { ExportBatches } from './audit-export.batches';
import { type ExportRow } from './audit-query.sql';
import { type AuditExportFormat } from './audit-query.types';

/** Most UTF-16 units handed to the consumer at once: each piece taken shows the consumer is still reading. */
const PIECE = 64 * 1024;
/** The server's own limit on an export's idle transaction, a backstop behind the idle timer (the consumer may take a while per batch). */
const SERVER_IDLE_LIMIT_MS = 120_000;

/** An export's two queries: its rows, and their weights in the same order (see `exportWeightsQuery()`). */
export interface ExportSelect {
  rows: string;
  weights: string;
}

/**
 * Opens an export: one connection of the read pool, a read-only transaction, two server-side
 * cursors over one snapshot (`REPEATABLE READ`): the rows, and their weights alone in the same
 * order. The first batch is fetched here, so that a failing database fails this call (a 503)
 * rather than a response already begun. The returned stream reads one batch ahead of its
 * consumer and no more (backpressure), so memory holds two batches whatever the export's size,
 * and the database reads the next batch while the consumer writes the last. Each batch is cut
 * from the weights of the rows to come (see {@link ExportBatches}): rows while they add up to
 * `EXPORT_BATCH_CHARS` (4 Mi) at most (rows near `maxEntryBytes` come a few dozen at a time, small
 * ones 2000 at a time), however the rows' weight changes along the export. Each FETCH has the
 * read timeout; a consumer that takes nothing for `idleMs` (a client that stopped reading) ends
 * the stream with `AUDIT_EXPORT_STALLED`; destroying the stream (a client gone, shutdown) gives
 * up the connection.
 *
 * @example
 * const search = checkSearch({ entityType: 'NDA' });
 * const stream = await openExport(reader, { rows: exportQuery(reader.table(), search), weights: exportWeightsQuery(reader.table(), search) }, 'ndjson', 30_000);
 */
export async function openExport(reader: AuditReader, select: ExportSelect, format: AuditExportFormat, idleMs: number): Promise<Readable> {
  const client = await reader.connection();
  try {
    const weights = async (rows: number) =>
      lastRows(await reader.within(client.query<{ weight: string }>(`FETCH ${rows} FROM audit_export_weights`), client)).map((row) =>
        Number(row.weight),
      );
    const batches = new ExportBatches(weights);
    const fetch = async (): Promise<ExportRow[]> => {
      const rows = await batches.next();
      return rows === 0 ? [] : lastRows(await reader.within(client.query<ExportRow>(`FETCH ${rows} FROM audit_export`), client));
    };
    // One snapshot for both cursors: the weights are those of the rows fetched, in their order.
    const open =
      `BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ; SET LOCAL statement_timeout = ${reader.timeoutMs}; ` +
      `SET LOCAL idle_in_transaction_session_timeout = ${Math.max(SERVER_IDLE_LIMIT_MS, 2 * idleMs)}; ` +
      `DECLARE audit_export NO SCROLL CURSOR FOR ${select.rows}; DECLARE audit_export_weights NO SCROLL CURSOR FOR ${select.weights}`;
    await reader.within(client.query(open), client);
    const first = exportLines(format, await fetch());
    return new ExportStream(client, fetch, () => batches.done, reader, format, exportHeader(format) + first, idleMs);
  } catch (error) {
    client.release(true);
    throw reader.readError(error);
  }
}

class ExportStream extends Readable {
  private client: ReadClient | undefined;
  /** The batch being handed out, piece by piece, from `offset`. */
  private batch: string;
  private offset = 0;
  /** The next batch, read and formatted ahead of the consumer. */
  private ahead: string | null = null;
  /** No FETCH left to make: every row is fetched. */
  private done: boolean;
  private inflight = false;
  /** The consumer asked for more before the next batch arrived. */
  private wanted = false;
  /** The last batch is consumed and the transaction being committed. */
  private finishing = false;
  private readonly idle: NodeJS.Timeout;

  constructor(
    client: ReadClient,
    private readonly fetch: () => Promise<ExportRow[]>,
    private readonly fetched: () => boolean,
    private readonly reader: AuditReader,
    private readonly format: AuditExportFormat,
    first: string,
    private readonly idleMs: number,
  ) {
    super({ encoding: 'utf8' });
    this.client = client;
    this.batch = first;
    this.done = fetched();
    this.idle = setTimeout(() => this.stalled(), idleMs);
    this.idle.unref();
  }

  override _read(): void {
    this.idle.refresh();
    for (;;) {
      if (this.offset < this.batch.length) {
        this.push(this.nextPiece());
        // The next batch is read from the database while this one is consumed: one batch ahead, no more.
        this.prefetch();
        return;
      }
      if (this.ahead !== null) {
        this.batch = this.ahead;
        this.offset = 0;
        this.ahead = null;
        continue;
      }
      if (this.done && !this.inflight) {
        void this.finish();
        return;
      }
      this.wanted = true;
      this.prefetch();
      return;
    }
  }

  /** Up to {@link PIECE} units of the batch, never splitting a surrogate pair. */
  private nextPiece(): string {
    let end = Math.min(this.batch.length, this.offset + PIECE);
    const last = this.batch.charCodeAt(end - 1);
    if (end < this.batch.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    const piece = this.batch.slice(this.offset, end);
    this.offset = end;
    if (this.offset === this.batch.length) this.batch = '';
    if (this.batch === '') this.offset = 0;
    return piece;
  }

  private prefetch(): void {
    if (this.inflight || this.done || this.ahead !== null) return;
    this.inflight = true;
    this.fetch().then(
      (rows) => {
        this.inflight = false;
        if (this.destroyed) return;
        this.done = this.fetched();
        this.ahead = exportLines(this.format, rows);
        if (this.wanted) {
          this.wanted = false;
          this._read();
        }
      },
      (error: unknown) => this.destroy(this.reader.readError(error)),
    );
  }

  /** The idle timer fired: ended, unless the wait is for the database (each FETCH has its own timeout). */
  private stalled(): void {
    if (this.destroyed || this.client === undefined) return;
    if (this.wanted || this.finishing) {
      this.idle.refresh();
      return;
    }
    this.destroy(AuditReadError.stalled(this.idleMs));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.idle);
    // Mid-export, the connection may be inside a FETCH: it is closed rather than given back.
    this.client?.release(true);
    this.client = undefined;
    callback(error);
  }

  private async finish(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.finishing = true;
    try {
      await this.reader.within(client.query('COMMIT'), client);
      this.client = undefined;
      clearTimeout(this.idle);
      client.release();
      this.push(null);
    } catch (error) {
      this.destroy(this.reader.readError(error));
    }
  }
}
