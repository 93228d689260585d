import { Controller, Get, Head, Inject, type CanActivate, Param, Query, Res, StreamableFile, type Type, UseGuards } from '@nestjs/common';
import { type AuditHttpOptions } from '../audit-options';
import { AuditQueryError, AuditReadError } from '../audit.errors';
import { EXPORT_CONTENT_TYPES } from './audit-export.format';
import { checkFormat, checkLimit } from './audit-query.input';
import { AuditQueryService } from './audit-query.service';
import { type AuditExportFormat, type AuditPage, type AuditRowRead, type AuditSearch } from './audit-query.types';

const SEARCH = ['userId', 'action', 'entityType', 'entityId', 'outcome', 'from', 'to'] as const;
const PAGE = ['cursor', 'limit'] as const;

/**
 * The read-only HTTP surface of the trail, behind the app's guard (see {@link auditQueryController}):
 * `GET <path>/entities/:type/:id`, `GET <path>?userId=&action=&entityType=&outcome=&from=&to=&cursor=&limit=`
 * `GET <path>/rows/:id` (one row in full, with its seal status where integrity is on)
 * and `GET <path>/export?format=ndjson|csv&from=&to=` (its `HEAD` checks the same and answers the
 * head without reading the trail). Bad input answers 400 with the reason
 * (`AuditQueryError`); a database that does not answer, 503 (`AuditReadError`); an export while
 * `maxExports` are running, or a page over 64 KiB while `readConnections` page answers wait for
 * clients that have not taken them (`PageDeliveries`), 503 with `Retry-After`.
 */
export class AuditQueryController {
  // Named explicitly: the class is subclassed at run time, and only a decorated class records its parameter types.
  constructor(@Inject(AuditQueryService) private readonly queries: AuditQueryService) {}

  @Get()
  search(@Query() query: unknown, @Res({ passthrough: true }) response: unknown): Promise<AuditPage> {
    return this.queries.pageDeliveries.deliver(response, () => searchPage(this.queries, query));
  }

  // Before the GET: Express and Fastify would otherwise answer a HEAD with the GET's handler, which runs the export.
  @Head('export')
  exportHead(@Query() query: unknown, @Res({ passthrough: true }) response: unknown): void {
    const params = readParams(query, [...SEARCH, 'format']);
    const format = checkFormat(params.format);
    try {
      this.queries.checkExport({ ...searchOf(params), format });
    } catch (error) {
      throw withRetryAfter(error, response);
    }
    const { type, disposition } = exportHeaders(format);
    setHeader(response, 'Content-Type', type);
    setHeader(response, 'Content-Disposition', disposition);
  }

  @Get('export')
  async export(@Query() query: unknown, @Res({ passthrough: true }) response: unknown): Promise<StreamableFile> {
    const params = readParams(query, [...SEARCH, 'format']);
    const format = checkFormat(params.format);
    const stream = await this.queries.export({ ...searchOf(params), format }).catch((error: unknown) => {
      throw withRetryAfter(error, response);
    });
    return (
      new StreamableFile(stream, exportHeaders(format))
        // Ending the response on a failure would make a truncated export look complete.
        .setErrorHandler((_error, response) => (response as { destroy?: () => void }).destroy?.())
    );
  }

  @Get('rows/:id')
  row(@Param('id') id: string, @Query() query: unknown, @Res({ passthrough: true }) response: unknown): Promise<AuditRowRead> {
    readParams(query, []);
    return this.queries.pageDeliveries.deliver(response, () => this.queries.row(id));
  }

  @Get('entities/:type/:id')
  history(
    @Param('type') type: string,
    @Param('id') id: string,
    @Query() query: unknown,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<AuditPage> {
    const params = readParams(query, PAGE);
    return this.queries.pageDeliveries.deliver(response, () =>
      this.queries.history(type, id, { cursor: params.cursor, limit: checkLimit(params.limit) }),
    );
  }
}

/**
 * The controller class for `http`: {@link AuditQueryController} under `path`, behind `guard`.
 *
 * @example
 * const controller = auditQueryController({ guard: AuditorsOnlyGuard, path: 'audit', viewer: false });
 */
export function auditQueryController(http: Required<AuditHttpOptions>): Type<AuditQueryController> {
  class GuardedAuditQueryController extends AuditQueryController {}
  UseGuards(http.guard as Type<CanActivate> | CanActivate)(GuardedAuditQueryController);
  Controller(http.path)(GuardedAuditQueryController);
  return GuardedAuditQueryController;
}

/**
 * The page of a search given as the query parameters of `GET <path>?…`, checked as that route checks
 * them (an unknown or repeated parameter, a bad value: {@link AuditQueryError}).
 *
 * @example
 * const page = await searchPage(queries, { action: 'nda_deleted', limit: '100' });
 */
export function searchPage(queries: AuditQueryService, query: unknown): Promise<AuditPage> {
  const params = readParams(query, [...SEARCH, ...PAGE]);
  return queries.search(searchOf(params), { cursor: params.cursor, limit: checkLimit(params.limit) });
}

/** The export's `Content-Type` and `Content-Disposition` (a file name stamped with the time). */
function exportHeaders(format: AuditExportFormat): { type: string; disposition: string } {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return { type: EXPORT_CONTENT_TYPES[format], disposition: `attachment; filename="audit-${stamp}.${format}"` };
}

/** `error`, after setting `Retry-After` on `response` when it is a refusal that has one. */
function withRetryAfter(error: unknown, response: unknown): unknown {
  if (error instanceof AuditReadError && error.retryAfterSeconds !== undefined)
    setHeader(response, 'Retry-After', String(error.retryAfterSeconds));
  return error;
}

// Express's response and Fastify's reply both set a header with header(name, value).
function setHeader(response: unknown, name: string, value: string): void {
  (response as { header?: (name: string, value: string) => unknown }).header?.(name, value);
}

function readParams(query: unknown, allowed: readonly string[]): Record<string, string | undefined> {
  const params: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    if (!allowed.includes(name)) throw AuditQueryError.unknown(name, allowed);
    if (typeof value !== 'string') throw AuditQueryError.invalid(name, 'given once, as text', value);
    params[name] = value;
  }
  return params;
}

function searchOf(params: Record<string, string | undefined>): AuditSearch {
  const search: Record<string, string | undefined> = {};
  for (const name of SEARCH) search[name] = params[name];
  return search as AuditSearch;
}
