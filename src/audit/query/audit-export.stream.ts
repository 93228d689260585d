import { Readable } from 'node:stream';
import { AuditReadError } from '../audit.errors';
import { type AuditReader, lastRows, type ReadClient } from './audit-reader';
import { exportHeader, exportLines } from './audit-export.format';
import { type ExportRow } from './audit-query.sql';
import { type AuditExportFormat } from './audit-query.types';

/** Most rows per FETCH: one batch of the stream. */
export const EXPORT_BATCH = 2000;
/** About what one batch holds once formatted (UTF-16 units): 2000 rows of 2 KB; fewer rows when they are larger. */
export const EXPORT_BATCH_CHARS = 4 * 1024 * 1024;
/** Rows of the first FETCH, before the rows' size is known. */
export const FIRST_BATCH = 200;
/** Most UTF-16 units handed to the consumer at once: each piece taken shows the consumer is still reading. */
const PIECE = 64 * 1024;
/** The server's own limit on an export's idle transaction, a backstop behind the idle timer (the consumer may take a while per batch). */
const SERVER_IDLE_LIMIT_MS = 120_000;

/**
 * Opens an export: one connection of the read pool, a read-only transaction, a server-side
 * `DECLARE … CURSOR`, and the first batch fetched, so that a failing database fails this call (a
 * 503) rather than a response already begun. The returned stream reads one batch ahead of its
 * consumer and no more (backpressure), so memory holds two batches whatever the export's size,
 * and the database reads the next batch while the consumer writes the last. A batch is sized by
 * the rows before it to about {@link EXPORT_BATCH_CHARS} (rows near `maxEntryBytes` come a few
 * dozen at a time, small ones {@link EXPORT_BATCH} at a time). Each FETCH has the
 * read timeout; a consumer that takes nothing for `idleMs` (a client that stopped reading) ends
 * the stream with `AUDIT_EXPORT_STALLED`; destroying the stream (a client gone, shutdown) gives
 * up the connection.
 *
 * @example
 * const stream = await openExport(reader, exportQuery(reader.table(), search), 'ndjson', 30_000);
 */
export async function openExport(reader: AuditReader, select: string, format: AuditExportFormat, idleMs: number): Promise<Readable> {
  const client = await reader.connection();
  try {
    const fetch = async (rows: number) => lastRows(await reader.within(client.query<ExportRow>(`FETCH ${rows} FROM audit_export`), client));
    const open =
      `BEGIN READ ONLY; SET LOCAL statement_timeout = ${reader.timeoutMs}; ` +
      `SET LOCAL idle_in_transaction_session_timeout = ${Math.max(SERVER_IDLE_LIMIT_MS, 2 * idleMs)}; ` +
      `DECLARE audit_export NO SCROLL CURSOR FOR ${select}; FETCH ${FIRST_BATCH} FROM audit_export`;
    const first = lastRows(await reader.within(client.query<ExportRow>(open), client));
    const lines = exportLines(format, first);
    const next = first.length < FIRST_BATCH ? 0 : batchRows(first.length, lines.length);
    return new ExportStream(client, fetch, reader, format, { text: exportHeader(format) + lines, next }, idleMs);
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
  /** No FETCH left to make: the last one came back short. */
  private done: boolean;
  /** Rows of the next FETCH, sized by the last batch. */
  private next: number;
  private inflight = false;
  /** The consumer asked for more before the next batch arrived. */
  private wanted = false;
  /** The last batch is consumed and the transaction being committed. */
  private finishing = false;
  private readonly idle: NodeJS.Timeout;

  constructor(
    client: ReadClient,
    private readonly fetch: (rows: number) => Promise<ExportRow[]>,
    private readonly reader: AuditReader,
    private readonly format: AuditExportFormat,
    first: { text: string; next: number },
    private readonly idleMs: number,
  ) {
    super({ encoding: 'utf8' });
    this.client = client;
    this.batch = first.text;
    this.next = first.next;
    this.done = first.next === 0;
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
    const asked = this.next;
    this.fetch(asked).then(
      (rows) => {
        this.inflight = false;
        if (this.destroyed) return;
        this.done = rows.length < asked;
        this.ahead = exportLines(this.format, rows);
        this.next = batchRows(rows.length, this.ahead.length);
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

/**
 * Rows of the next FETCH after a batch of `rows` rows that formatted to `chars` units: as many as
 * make about {@link EXPORT_BATCH_CHARS}, from 1 to {@link EXPORT_BATCH}.
 *
 * @example
 * batchRows(200, 12_000_000); // 69: rows of 60 KB
 */
export function batchRows(rows: number, chars: number): number {
  if (rows === 0 || chars === 0) return EXPORT_BATCH;
  return Math.max(1, Math.min(EXPORT_BATCH, Math.floor((EXPORT_BATCH_CHARS * rows) / chars)));
}
