import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { Audited } from '../audit';
import { type Nda } from './nda.entity';
import { NdaIdPipe, parseCreateNda, parseUpdateNda } from './nda.input';
import { NdasService } from './ndas.service';

@Controller('ndas')
export class NdasController {
  constructor(private readonly ndas: NdasService) {}

  @Post()
  @Audited('nda_created', { entityType: 'NDA', entityId: { result: 'id' } })
  create(@Body() body: unknown): Promise<Nda> {
    return this.ndas.create(parseCreateNda(body));
  }

  @Get(':id')
  get(@Param('id', NdaIdPipe) id: string): Promise<Nda> {
    return this.ndas.get(id);
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
