import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md: "Excluded properties never appear, for every kind of write … `settings.theme`
// one key of a JSON column's value (in each element of an array too)". A Nest app that validates
// with `ValidationPipe({ transform: true })` and `@Type(() => SettingsDto)` hands the entity class
// instances, not plain objects: the JSON column's value is then a DTO.

/** What a client's settings become after class-transformer: an instance of a class. */
class SettingsDto {
  theme?: string;
  color?: string;
}

@AuditedEntity({ type: 'Board', exclude: ['settings.theme', 'panels.theme'] })
@Entity('probe_board')
class Board {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @Column('jsonb', { nullable: true }) settings!: SettingsDto | null;
  @Column('jsonb', { nullable: true }) panels!: SettingsDto[] | null;
}

const dto = (values: SettingsDto): SettingsDto => Object.assign(new SettingsDto(), values);

@Controller()
class BoardsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('boards')
  async create(@Body() body: { title: string; settings: SettingsDto; panels: SettingsDto[] }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Board);
    const board = repo.create({ title: body.title });
    board.settings = dto(body.settings);
    board.panels = body.panels.map(dto);
    return { id: (await repo.save(board)).id };
  }

  @Patch('boards/:id')
  async update(@Param('id') id: string, @Body() body: { settings: SettingsDto }): Promise<void> {
    const repo = this.db.getRepository(Board);
    const board = await repo.findOneByOrFail({ id: Number(id) });
    board.settings = dto(body.settings);
    await repo.save(board);
  }

  @Post('boards/:id/by-criteria')
  async byCriteria(@Param('id') id: string, @Body() body: { settings: SettingsDto }): Promise<void> {
    await this.db.getRepository(Board).update({ id: Number(id) }, { settings: dto(body.settings) as never });
  }
}

describe('probe: an excluded JSON key of a value that is a class instance (a validated DTO)', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let n = 0;

  const send = async (method: 'post' | 'patch', path: string, body: object): Promise<string> => {
    const requestId = `probe-dto-${++n}`;
    const response = await request(app.getHttpServer())[method](path).set('x-request-id', requestId).send(body);
    expect(response.status).toBeLessThan(300);
    return JSON.stringify((await changesOf(db, requestId)).entities);
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Board], controllers: [BoardsController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('leaves the excluded key out of save() of a new row, of an element of an array, of an update and of update() by criteria', async () => {
    const created = await send('post', '/boards', {
      title: 'Plan',
      settings: { theme: 'secret-theme-1', color: 'blue' },
      panels: [{ theme: 'secret-theme-2', color: 'red' }],
    });
    expect(created).toContain('blue');
    const [{ id }] = await db.query<{ id: number }>('SELECT id FROM probe_board');
    const updated = await send('patch', `/boards/${id}`, { settings: { theme: 'secret-theme-3', color: 'green' } });
    expect(updated).toContain('green');
    const byCriteria = await send('post', `/boards/${id}/by-criteria`, { settings: { theme: 'secret-theme-4', color: 'gold' } });
    expect(byCriteria).toContain('gold');
    expect({ created, updated, byCriteria }).toEqual({
      created: expect.not.stringContaining('secret-theme') as unknown,
      updated: expect.not.stringContaining('secret-theme') as unknown,
      byCriteria: expect.not.stringContaining('secret-theme') as unknown,
    });
  });
});
