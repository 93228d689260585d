import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { Audited, type AuditPage, AuditQueryService } from '../audit';
import { AuditReaderGuard } from '../audit-reader.guard';
import { type Nda } from './nda.entity';
import { NdaIdPipe, parseCreateNda, parseUpdateNda } from './nda.input';
import { NdasService } from './ndas.service';

@Controller('ndas')
export class NdasController {
  constructor(
    private readonly ndas: NdasService,
    private readonly audit: AuditQueryService,
  ) {}

  @Post()
  @Audited('nda_created', { entityType: 'NDA', entityId: { result: 'id' } })
  create(@Body() body: unknown): Promise<Nda> {
    return this.ndas.create(parseCreateNda(body));
  }

  @Get(':id')
  get(@Param('id', NdaIdPipe) id: string): Promise<Nda> {
    return this.ndas.get(id);
  }

  /** The NDA's audit trail, newest first (also after it was deleted), for auditors only. */
  @Get(':id/history')
  @UseGuards(AuditReaderGuard)
  history(@Param('id', NdaIdPipe) id: string, @Query('cursor') cursor?: string): Promise<AuditPage> {
    return this.audit.history('NDA', id, { cursor });
  }

  @Patch(':id')
  @Audited('nda_updated', { entityType: 'NDA', entityId: { param: 'id' } })
  update(@Param('id', NdaIdPipe) id: string, @Body() body: unknown): Promise<Nda> {
    return this.ndas.update(id, parseUpdateNda(body));
  }

  @Delete(':id')
  @HttpCode(204)
  @Audited('nda_deleted', { entityType: 'NDA', entityId: { param: 'id' } })
  remove(@Param('id', NdaIdPipe) id: string): Promise<void> {
    return this.ndas.remove(id);
  }
}
