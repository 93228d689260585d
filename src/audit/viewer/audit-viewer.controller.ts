import {
  type CanActivate,
  Controller,
  Get,
  Header,
  Inject,
  NotFoundException,
  Param,
  Query,
  Req,
  Res,
  StreamableFile,
  type Type,
  UseGuards,
} from '@nestjs/common';
import { type AuditHttpOptions } from '../audit-options';
import { type AuditStateChange } from '../audit-state-history';
import { AuditService, type AuditStatus } from '../audit.service';
import { AuditSealer, type IntegrityStatus } from '../integrity/audit-sealer';
import { searchPage } from '../query/audit-query.controller';
import { AuditQueryService } from '../query/audit-query.service';
import { type AuditPage } from '../query/audit-query.types';
import { type VolumeBucket } from '../query/audit-volume';
import { pageHtml, readViewerAssets, type ViewerAsset, viewerAssetsDir } from './viewer-assets';
import { ViewerHeadersGuard } from './viewer-security';

/**
 * What the status panel shows: the write path, sealing, and the state over the last hour.
 *
 * @example
 * const { status, integrity, history } = (await fetch('/audit/viewer/status').then((r) => r.json())) as ViewerStatus;
 */
export interface ViewerStatus {
  /** The server's clock, ISO 8601, for ages. */
  now: string;
  status: AuditStatus;
  /** Null when integrity is off. */
  integrity: IntegrityStatus | null;
  history: AuditStateChange[];
}

/**
 * The audit viewer, behind the app's guard: the page at `GET <path>/ui`, its files at
 * `GET <path>/ui/<file>`, the panel's data at `GET <path>/viewer/status` and
 * `GET <path>/viewer/volume` (rows per hour over the last day), and the list's pages at
 * `GET <path>/viewer/rows?…` (the JSON API's search, `GET <path>?…`, at a path under the page's
 * folder: a browser sends the credentials it signed in with there at once, where `<path>?…` is
 * refused first). Every response carries the viewer's security headers (CSP, nosniff, no framing).
 * The page reads the trail through the JSON API, behind the same guard.
 *
 * @example
 * const controller = auditViewerController({ guard: AuditorsOnlyGuard, path: 'audit', viewer: true }); // a subclass, guarded
 */
export class AuditViewerController {
  private readonly assets: Map<string, ViewerAsset>;
  private readonly template: string;

  constructor(
    @Inject(AuditService) private readonly audit: AuditService,
    @Inject(AuditSealer) private readonly sealer: AuditSealer,
    @Inject(AuditQueryService) private readonly queries: AuditQueryService,
  ) {
    this.assets = readViewerAssets(viewerAssetsDir());
    this.template = (this.assets.get('index.html') as ViewerAsset).body.toString('utf8');
  }

  @Get('ui')
  @Header('Content-Type', 'text/html; charset=utf-8')
  page(@Req() request: { url?: string; originalUrl?: string }): string {
    const url = request.originalUrl ?? request.url ?? '/';
    return pageHtml(this.template, new URL(url, 'http://localhost').pathname);
  }

  @Get('ui/:file')
  file(@Param('file') name: string): StreamableFile {
    const asset = name === 'index.html' ? undefined : this.assets.get(name);
    if (!asset) throw new NotFoundException('No such file of the audit viewer');
    return new StreamableFile(asset.body, { type: asset.type, length: asset.body.length });
  }

  @Get('viewer/status')
  status(): ViewerStatus {
    return {
      now: new Date().toISOString(),
      status: this.audit.status(),
      integrity: this.sealer.status(),
      history: this.audit.stateHistory(),
    };
  }

  @Get('viewer/rows')
  rows(@Query() query: unknown, @Res({ passthrough: true }) response: unknown): Promise<AuditPage> {
    // The same pages as `GET <path>`, under the same bound on answers their clients do not read.
    return this.queries.pageDeliveries.deliver(response, () => searchPage(this.queries, query));
  }

  @Get('viewer/volume')
  async volume(): Promise<{ now: string; hours: VolumeBucket[] }> {
    const now = Date.now();
    return { now: new Date(now).toISOString(), hours: await this.queries.hourlyVolume(now) };
  }
}

/**
 * The viewer's controller class for `http`: {@link AuditViewerController} under `path`, behind
 * `guard`, with the viewer's security headers on every response.
 *
 * @example
 * const controller = auditViewerController({ guard: AuditorsOnlyGuard, path: 'audit', viewer: true });
 */
export function auditViewerController(http: Required<AuditHttpOptions>): Type<AuditViewerController> {
  class GuardedAuditViewerController extends AuditViewerController {}
  UseGuards(ViewerHeadersGuard, http.guard as Type<CanActivate> | CanActivate)(GuardedAuditViewerController);
  Controller(http.path)(GuardedAuditViewerController);
  return GuardedAuditViewerController;
}
