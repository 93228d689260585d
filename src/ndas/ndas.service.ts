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

  /** Loads (and locks) the row first, so that its audit row records what was deleted, and a concurrent DELETE answers 404. */
  remove(id: string): Promise<void> {
    return this.ndas.manager.transaction(async (manager) => {
      const nda = await manager.findOne(Nda, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!nda) throw new NotFoundException(`NDA ${id} not found`);
      await manager.remove(nda);
    });
  }
}
