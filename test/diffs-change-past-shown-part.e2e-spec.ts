import { Body, Controller, type INestApplication, Param, Patch } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": an `update` lists the properties TypeORM found changed, if
// their values differ, and a change is never dropped for its size. A diff shows at most 2^20
// objects and arrays of a value (each further one is `[Truncated]`, on both sides alike); a JSON
// value whose only change lies past them (a document holding a million small objects before the
// `permissions` that changed) is compared as it is, within a bound, and listed.

/** Objects in the document before its `permissions`: one more than a diff shows of a value. */
const FILLER = 1 << 20;

@AuditedEntity({ type: 'Workspace' })
@Entity('large_document_workspace')
class Workspace {
  @PrimaryGeneratedColumn() id!: number;
  @Column('jsonb') document!: { pages: object[]; permissions: { role: string } };
}

@Controller()
class WorkspacesController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Patch('workspaces/:id/role')
  async role(@Param('id') id: string, @Body() body: { role: string }): Promise<void> {
    const repo = this.db.getRepository(Workspace);
    const workspace = await repo.findOneByOrFail({ id: Number(id) });
    workspace.document = { ...workspace.document, permissions: { role: body.role } };
    await repo.save(workspace);
  }
}

describe('a JSON value changed past the part of it a diff shows', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    // TypeORM and the diff read a million objects twice or more: a minute or more on a loaded machine
    // (a request without its row past `unfinishedAfterMs` would be recorded as unfinished first).
    app = await startDiffsApp(
      db,
      { mode: 'sync', unfinishedAfterMs: 3_600_000 },
      { entities: [Workspace], controllers: [WorkspacesController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('lists the change of permissions.role that follows a million objects', async () => {
    // The app's large document, written by SQL (jsonb keeps `pages` before `permissions`, shorter keys first).
    const [{ id }] = await db.query<{ id: number }>(
      `INSERT INTO large_document_workspace (document)
       SELECT jsonb_build_object('pages', jsonb_agg('{}'::jsonb), 'permissions', jsonb_build_object('role', 'viewer'))
       FROM generate_series(1, $1::int) RETURNING id`,
      [FILLER],
    );
    expect(await db.query('SELECT jsonb_object_keys(document) AS key FROM large_document_workspace')).toEqual([
      { key: 'pages' },
      { key: 'permissions' },
    ]);
    const patched = await request(app.getHttpServer())
      .patch(`/workspaces/${id}/role`)
      .set('x-request-id', 'workspace-role')
      .send({ role: 'owner' });
    expect(patched.status).toBe(200);
    // The update was committed: the row now says "owner".
    expect(await db.query("SELECT document->'permissions'->>'role' AS role FROM large_document_workspace")).toEqual([{ role: 'owner' }]);
    const changes = await changesOf(db, 'workspace-role');
    expect(changes.entitiesOmitted).toBeUndefined();
    const entities = (changes.entities ?? []) as { type: string; id: unknown; op: string; fields?: Record<string, unknown> }[];
    expect(entities.map(({ type, id: changed, op, fields }) => ({ type, id: changed, op, fields: Object.keys(fields ?? {}) }))).toEqual([
      { type: 'Workspace', id, op: 'update', fields: ['document'] },
    ]);
  }, 300_000);
});
