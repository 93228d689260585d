import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Nda } from './nda.entity';
import { NdasController } from './ndas.controller';
import { NdasService } from './ndas.service';

@Module({
  imports: [TypeOrmModule.forFeature([Nda])],
  controllers: [NdasController],
  providers: [NdasService],
})
export class NdasModule {}
