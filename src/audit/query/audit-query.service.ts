import { type BeforeApplicationShutdown, Inject, Injectable } from '@nestjs/common';
import { type Readable } from 'node:stream';
import { type Repository } from 'typeorm';
import { type AuditLog } from '../audit-log.entity';
import { type ResolvedAuditOptions } from '../audit-options';
import { AUDIT_OPTIONS, AUDIT_REPOSITORY } from '../audit.constants';
import { AuditQueryError, AuditReadError } from '../audit.errors';
import { cursorKeyOf, decodeAuditCursor, encodeAuditCursor } from './audit-cursor';
import { openExport } from './audit-export.stream';
import { checkFormat, checkLimit, checkSearch } from './audit-query.input';
import { exportQuery, exportWeightsQuery, type PageRow, pageQuery, pageStatement, rowQuery, toAuditLog } from './audit-query.sql';
import {
  type AuditExportFormat,
  type AuditExportRequest,
  type AuditPage,
  type AuditPageRequest,
  type AuditRowRead,
  type AuditSearch,
} from './audit-query.types';
import { type RowSealFields, sealLookupQuery, type SealLookupRow, sealStatusOf } from './audit-seal-status';
import { AuditReadPool } from './audit-read-pool';
import { AuditReader } from './audit-reader';
import { PageDeliveries } from './page-deliveries';
import { checkpointsCarryingQuery, erasureEntriesQuery, erasureEntryAuthentic, sealCheckQuery, sealProblem } from './row-trust';
import { type VolumeBucket, volumeBuckets, volumeQuery } from './audit-volume';
import { historyReads } from './history-sql';
import { sealTableOf } from '../integrity/seal-store';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Reads the trail from the audit DataSource, on connections of its own (`readConnections`, never
 * the writer's): one entity's history, one user's actions, a search, and streamed exports (at
 * most `maxExports` at once; one more rejects at once with `AUDIT_READ_BUSY`). Pages come newest first, with a keyset cursor on `(occurred_at, id)`.
 * Every read has its own timeout (`readTimeoutMs`); bad input rejects with an
 * `AuditQueryError` (`AUDIT_INVALID_QUERY`), a database that does not answer with an
 * `AuditReadError` (`AUDIT_READ_FAILED`, `AUDIT_READ_TIMEOUT`, `AUDIT_READ_UNAVAILABLE`). Reads
 * never change the write path's state.
 *
 * @example
 * const page = await queries.history('NDA', ndaId);
 * const older = page.nextCursor ? await queries.history('NDA', ndaId, { cursor: page.nextCursor }) : undefined;
 */
@Injectable()
export class AuditQueryService implements BeforeApplicationShutdown {
  private readonly pool: AuditReadPool;
  private readonly reader: AuditReader;
  /** Exports open now, each on a connection of its own: at most `maxExports`. */
  private readonly exports = new Set<Readable>();
  /** Slots taken by exports still opening. */
  private opening = 0;
  /** Page answers waiting for HTTP clients that have not taken them: at most `readConnections` (small ones aside). */
  readonly pageDeliveries: PageDeliveries;

  constructor(
    @Inject(AUDIT_REPOSITORY) repository: Repository<AuditLog>,
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
  ) {
    this.pool = new AuditReadPool(() => repository.manager?.connection, options.readConnections, options.readTimeoutMs);
    this.reader = new AuditReader(repository, options.readTimeoutMs, this.pool);
    this.pageDeliveries = new PageDeliveries(
      options.readConnections,
      options.exportIdleMs,
      Math.max(1, Math.ceil(options.readTimeoutMs / 1000)),
    );
  }

  /**
   * Rows per hour over the 24 hours up to `now` (the current hour included), oldest first, empty
   * hours as 0: the viewer's volume chart.
   *
   * @example
   * const hours = await queries.hourlyVolume(); // [{ hour: '2026-12-03T18:00:00.000Z', rows: 0 }, …]
   */
  async hourlyVolume(now = Date.now()): Promise<VolumeBucket[]> {
    const rows = await this.reader.read<{ hour_ms: string; n: string }>(volumeQuery(this.reader.table(), now));
    return volumeBuckets(rows, now);
  }

  /**
   * The history of one entity, newest first: the rows about it, and the rows about another entity
   * whose `changes.entities` holds a change of it (one transaction that changed both).
   *
   * @example
   * const { items } = await queries.history('NDA', '0193a1c2-…');
   */
  async history(entityType: string, entityId: string, page: AuditPageRequest = {}): Promise<AuditPage> {
    if (typeof entityType !== 'string' || entityType === '') throw AuditQueryError.invalid('entityType', 'non-empty text', entityType);
    if (typeof entityId !== 'string' || entityId === '') throw AuditQueryError.invalid('entityId', 'non-empty text', entityId);
    const checked = checkSearch({ entityType, entityId });
    const limit = checkLimit(page.limit);
    const after = page.cursor === undefined ? undefined : decodeAuditCursor(page.cursor);
    const { select, prepared } = historyReads(this.reader.table(), checked.entityType as string, checked.entityId as string, after, limit);
    return this.pageOf(await this.reader.read<PageRow>(select, prepared), limit);
  }

  /**
   * One user's actions in a time range (`from` inclusive, `to` exclusive), newest first.
   *
   * @example
   * await queries.byUser('user-42', { from: '2026-11-01', to: '2026-12-01' });
   */
  async byUser(userId: string, range: Pick<AuditSearch, 'from' | 'to'> = {}, page: AuditPageRequest = {}): Promise<AuditPage> {
    if (typeof userId !== 'string' || userId === '') throw AuditQueryError.invalid('userId', 'non-empty text', userId);
    return this.search({ userId, from: range.from, to: range.to }, page);
  }

  /**
   * One row in full by its id, with its seal status where integrity is on (see {@link AuditRowRead}):
   * the row is read by its primary key, and its seal found by a binary search over `audit_seal`'s.
   *
   * @example
   * const { items: [row] } = await queries.row('0193a1c2-7b1e-7c3d-9e4f-0123456789ab');
   * row?.seal; // { state: 'sealed', seq: 42, sealedAt: '2026-12-04T17:16:42.000Z' }
   */
  async row(id: string): Promise<AuditRowRead> {
    if (typeof id !== 'string' || !UUID.test(id)) throw AuditQueryError.invalid('id', 'a UUID', id);
    const sealing = this.options.integrity.enabled;
    const table = this.reader.table();
    const rows = await this.reader.read<PageRow & RowSealFields>(rowQuery(table, id.toLowerCase(), sealing));
    const items: AuditRowRead['items'] = [];
    for (const row of rows) {
      if (!sealing) {
        items.push(toAuditLog(row));
        continue;
      }
      const [found] = await this.reader.read<SealLookupRow>(sealLookupQuery(sealTableOf(table), { tx: row.seal_tx, id: row.id }));
      const item = toAuditLog(row);
      let seal = sealStatusOf(row, found);
      // A seal the app's role appended vouches for nothing: only one this process can authenticate counts.
      if (seal.seq !== undefined) {
        const [check] = await this.reader.read<Record<string, unknown>>(sealCheckQuery(sealTableOf(table), seal.seq));
        const problem = sealProblem(check, this.options.integrity.signingKey);
        if (problem !== null)
          seal = { ...seal, state: 'altered', detail: `${problem}: a seal not made by the sealer (audit-verify names it)` };
      }
      // The seal covers the erased marker's commitments, not the erasure: one no authentic entry records was made outside erase().
      if (item.erasedBy !== null && seal.state === 'sealed' && !(await this.erasureRecorded(table, item.erasedBy))) {
        seal = {
          ...seal,
          state: 'altered',
          detail: `erased under erasure ${item.erasedBy}, which no authentic audit_erasure entry records`,
        };
      }
      items.push(Object.assign(item, { seal }));
    }
    return { items };
  }

  /**
   * Whether an authentic `audit_erasure` entry records erasure `id`: in the table (see
   * {@link erasureEntryAuthentic}), or carried forward by a retention checkpoint that this
   * process can authenticate.
   */
  private async erasureRecorded(table: string, id: string): Promise<boolean> {
    const sealTable = sealTableOf(table);
    const entries = await this.reader.read<Record<string, unknown>>(erasureEntriesQuery(table, sealTable, id));
    if (erasureEntryAuthentic(entries, this.options.integrity.entryKeys)) return true;
    const checkpoints = await this.reader.read<Record<string, unknown>>(checkpointsCarryingQuery(sealTable, id));
    return checkpoints.some((checkpoint) => sealProblem(checkpoint, this.options.integrity.signingKey) === null);
  }

  /**
   * Rows matching every given field (action, entity type and id, outcome, user, time range), newest first.
   *
   * @example
   * await queries.search({ action: 'nda_deleted', outcome: 'failure' }, { limit: 100 });
   */
  async search(search: AuditSearch = {}, page: AuditPageRequest = {}): Promise<AuditPage> {
    const checked = checkSearch(search);
    const limit = checkLimit(page.limit);
    const after = page.cursor === undefined ? undefined : decodeAuditCursor(page.cursor);
    const table = this.reader.table();
    return this.pageOf(
      await this.reader.read<PageRow>(pageQuery(table, checked, after, limit), pageStatement(table, checked, after, limit)),
      limit,
    );
  }

  /** A page of `limit` items from `limit + 1` rows read, the extra one telling that a next page exists. */
  private pageOf(rows: PageRow[], limit: number): AuditPage {
    const items = rows.slice(0, limit);
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return {
      items: items.map(toAuditLog),
      nextCursor: last ? encodeAuditCursor(cursorKeyOf(last.occurred_us, last.id)) : null,
    };
  }

  /**
   * The rows of a search, oldest first, as a stream of NDJSON (default) or CSV text that reads
   * the database batch by batch as it is consumed. Resolves once the first batch is read;
   * destroy the stream to stop early.
   *
   * @example
   * const stream = await queries.export({ format: 'csv', from: '2026-11-01', to: '2026-12-01' });
   * await pipeline(stream, createWriteStream('november.csv'));
   */
  async export(request: AuditExportRequest = {}): Promise<Readable> {
    const { format: checkedFormat, search: checked } = this.checkedExport(request);
    const select = { rows: exportQuery(this.reader.table(), checked), weights: exportWeightsQuery(this.reader.table(), checked) };
    const { exportIdleMs } = this.options;
    this.opening += 1;
    let stream: Readable;
    try {
      stream = await openExport(this.reader, select, checkedFormat, exportIdleMs);
    } finally {
      this.opening -= 1;
    }
    this.exports.add(stream);
    stream.once('close', () => this.exports.delete(stream));
    return stream;
  }

  /**
   * What {@link export} checks before it reads anything: the request (`AUDIT_QUERY_INVALID`) and a
   * free export slot (`AUDIT_READ_BUSY`, at most `maxExports`). Returns the format; reads nothing
   * and takes no slot (the export route's HEAD).
   *
   * @example
   * queries.checkExport({ format: 'csv', from: '2026-11-01' }); // 'csv'
   */
  checkExport(request: AuditExportRequest = {}): AuditExportFormat {
    return this.checkedExport(request).format;
  }

  private checkedExport(request: AuditExportRequest): { format: AuditExportFormat; search: ReturnType<typeof checkSearch> } {
    const { format, ...search } = request;
    const checked = { format: checkFormat(format), search: checkSearch(search) };
    const { maxExports, readTimeoutMs } = this.options;
    if (this.exports.size + this.opening >= maxExports) {
      throw AuditReadError.busy(maxExports, Math.max(1, Math.ceil(readTimeoutMs / 1000)));
    }
    return checked;
  }

  /** Ends the exports still open (their responses cut short, never complete) and closes the read pool. */
  async beforeApplicationShutdown(): Promise<void> {
    for (const stream of this.exports) stream.destroy(AuditReadError.closed());
    this.exports.clear();
    let timer: NodeJS.Timeout | undefined;
    // Pages still reading end within readTimeoutMs (their statement_timeout); shutdown waits no longer.
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.readTimeoutMs).unref()));
    await Promise.race([this.pool.end().catch(() => undefined), bound]).finally(() => clearTimeout(timer));
  }
}
