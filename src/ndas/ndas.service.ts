import { Injectable, NotFoundException } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { Nda } from './nda.entity';
import { type CreateNdaInput, type UpdateNdaInput } from './nda.input';

@Injectable()
export class NdasService {
  constructor(@InjectRepository(Nda) private readonly ndas: Repository<Nda>) {}

  create(input: CreateNdaInput): Promise<Nda> {
    return this.ndas.save(this.ndas.create(input));
  }

  async get(id: string): Promise<Nda> {
    const nda = await this.ndas.findOneBy({ id });
    if (!nda) throw new NotFoundException(`NDA ${id} not found`);
    return nda;
  }

  async update(id: string, input: UpdateNdaInput): Promise<Nda> {
    const nda = await this.get(id);
    return this.ndas.save(this.ndas.merge(nda, input));
  }

  /** Loads the row first, so that its audit row records what was deleted. */
  async remove(id: string): Promise<void> {
    await this.ndas.remove(await this.get(id));
  }
}
