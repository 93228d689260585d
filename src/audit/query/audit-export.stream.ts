import { Readable } from 'node:stream';
import { type AuditReader, lastRows, type ReadClient } from './audit-reader';
import { exportHeader, exportLines } from './audit-export.format';
import { type ExportRow } from './audit-query.sql';
import { type AuditExportFormat } from './audit-query.types';

/** Rows per FETCH: one chunk of the stream. */
export const EXPORT_BATCH = 2000;
/** A consumer that stops reading for this long ends its export (the transaction is closed by the server). */
const IDLE_LIMIT_MS = 120_000;

/**
 * Opens an export: one connection, a read-only transaction, a server-side `DECLARE … CURSOR`,
 * and the first batch fetched, so that a failing database fails this call (a 503) rather than a
 * response already begun. The returned stream reads one batch ahead of its consumer and no more
 * (backpressure), so memory holds two batches whatever the export's size, and the database
 * reads the next batch while the consumer writes the last. Each FETCH has
 * the read timeout; destroying the stream (a client gone) gives up the connection.
 *
 * @example
 * const stream = await openExport(reader, exportQuery(reader.table(), search), 'ndjson');
 */
export async function openExport(reader: AuditReader, select: string, format: AuditExportFormat): Promise<Readable> {
  const client = await reader.connection();
  try {
    const next = `FETCH ${EXPORT_BATCH} FROM audit_export`;
    const fetch = async () => lastRows(await reader.within(client.query<ExportRow>(next)));
    const open =
      `BEGIN READ ONLY; SET LOCAL statement_timeout = ${reader.timeoutMs}; ` +
      `SET LOCAL idle_in_transaction_session_timeout = ${IDLE_LIMIT_MS}; DECLARE audit_export NO SCROLL CURSOR FOR ${select}; ${next}`;
    const first = lastRows(await reader.within(client.query<ExportRow>(open)));
    return new ExportStream(client, fetch, reader, format, exportHeader(format) + exportLines(format, first), first.length);
  } catch (error) {
    client.release(true);
    throw reader.readError(error);
  }
}

class ExportStream extends Readable {
  private client: ReadClient | undefined;
  /** The next chunk, read and formatted, waiting for the consumer. */
  private pending: string | null;
  private done: boolean;
  private inflight = false;
  /** The consumer asked for more before the next batch arrived. */
  private wanted = false;

  constructor(
    client: ReadClient,
    private readonly fetch: () => Promise<ExportRow[]>,
    private readonly reader: AuditReader,
    private readonly format: AuditExportFormat,
    first: string,
    firstRows: number,
  ) {
    super({ encoding: 'utf8' });
    this.client = client;
    this.pending = first;
    this.done = firstRows < EXPORT_BATCH;
  }

  override _read(): void {
    if (this.pending === null) {
      this.wanted = true;
      this.prefetch();
      return;
    }
    const chunk = this.pending;
    this.pending = null;
    if (this.done) {
      if (chunk !== '') this.push(chunk);
      void this.finish();
      return;
    }
    // The next batch is read from the database while this one is consumed: one batch ahead, no more.
    this.prefetch();
    this.push(chunk);
  }

  private prefetch(): void {
    if (this.inflight || this.done || this.pending !== null) return;
    this.inflight = true;
    this.fetch().then(
      (rows) => {
        this.inflight = false;
        if (this.destroyed) return;
        this.done = rows.length < EXPORT_BATCH;
        this.pending = exportLines(this.format, rows);
        if (this.wanted) {
          this.wanted = false;
          this._read();
        }
      },
      (error: unknown) => this.destroy(this.reader.readError(error)),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Mid-export, the connection may be inside a FETCH: it is closed rather than given back.
    this.client?.release(true);
    this.client = undefined;
    callback(error);
  }

  private async finish(): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await this.reader.within(client.query('COMMIT'));
      this.client = undefined;
      client.release();
      this.push(null);
    } catch (error) {
      this.destroy(this.reader.readError(error));
    }
  }
}
