import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// Promise (docs/GUIDE.md, "Before/after diffs"): an `update` lists "the properties and relations
// TypeORM found changed, if their values differ"; "Diffs take at most half of `maxEntryBytes`. Past
// that, values are cut … and every change keeps its entity type, op and field names … so a client
// that pads anything it sends cannot wipe the record of what its request changed".
//
// Break: a diff's values are walked once to be shown (src/audit/diffs/shown-value.ts), and past
// 2^20 objects and arrays (MAX_NODES) each further object or array becomes the same
// '[Truncated]' text, on both sides. Two JSON values that differ only after that many nodes are
// then judged equal (sameValue) and the property is dropped as unchanged; an update that changed
// only it is not listed at all, and nothing is counted in `entitiesOmitted`. A document column
// holding a list of a million small objects (3 MB of JSON) before a `permissions` object hides
// every change to `permissions` from the trail.
//
// Observed: the PATCH that changed `permissions.role` from "viewer" to "owner" has no
// `changes.entities` (TypeORM did UPDATE the row: the table holds "owner").
//
// Severity: medium (a change committed through an audited entity leaves no trace; the value must
// be large, which an app storing client documents allows).
//
// Fix guess: when the walk passes MAX_NODES, do not judge the values equal: compare the raw
// values (sameValue has no node cap) or list the property with both sides cut
// (`{ _truncated: true, originalBytes }`) as the size bound does.

const FILLER = 1 << 20;

@AuditedEntity({ type: 'Workspace' })
@Entity('probe_workspace')
class Workspace {
  @PrimaryGeneratedColumn() id!: number;
  @Column('jsonb') document!: { pages: object[]; permissions: { role: string } };
}

@Controller()
class WorkspacesController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('workspaces')
  async create(@Body() body: { role: string }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Workspace);
    // The app's own large document: a million empty pages (what a client's import could hold).
    const pages = Array.from({ length: FILLER }, () => ({}));
    return { id: (await repo.save(repo.create({ document: { pages, permissions: { role: body.role } } }))).id };
  }

  @Patch('workspaces/:id/role')
  async role(@Param('id') id: string, @Body() body: { role: string }): Promise<void> {
    const repo = this.db.getRepository(Workspace);
    const workspace = await repo.findOneByOrFail({ id: Number(id) });
    workspace.document = { ...workspace.document, permissions: { role: body.role } };
    await repo.save(workspace);
  }
}

describe('probe: a change after a million objects in a JSON value', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Workspace], controllers: [WorkspacesController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('lists the change of permissions.role (cut if need be), or counts it as omitted', async () => {
    const created = await request(app.getHttpServer()).post('/workspaces').set('x-request-id', 'probe-ws-create').send({ role: 'viewer' });
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    const patched = await request(app.getHttpServer())
      .patch(`/workspaces/${id}/role`)
      .set('x-request-id', 'probe-ws-role')
      .send({ role: 'owner' });
    expect(patched.status).toBe(200);
    // The update was committed: the row now says "owner".
    expect(await db.query("SELECT document->'permissions'->>'role' AS role FROM probe_workspace")).toEqual([{ role: 'owner' }]);
    const changes = await changesOf(db, 'probe-ws-role');
    const entities = (changes.entities ?? []) as { type: string; op: string; fields?: Record<string, unknown> }[];
    const listed = entities.some((change) => change.type === 'Workspace' && change.op === 'update' && 'document' in (change.fields ?? {}));
    const omitted = typeof changes.entitiesOmitted === 'number' && changes.entitiesOmitted > 0;
    const found = listed
      ? 'listed'
      : omitted
        ? 'counted in entitiesOmitted'
        : `neither listed nor counted: ${JSON.stringify(changes).slice(0, 300)}`;
    expect(['listed', 'counted in entitiesOmitted']).toContain(found);
  }, 120_000);
});
