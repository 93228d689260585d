import { Body, Controller, Headers, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { auditScope, AuditQueryService, AuditService } from '../src/audit';
import { verify } from './support/integrity';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/GUIDE.md: "Diffs take at most half of `maxEntryBytes`" (the other half is the body's,
// metadata's and the fixed fields'), and an oversized entry "is truncated with a marker, never
// rejected" (DESIGN 7). Whatever an outsider pads (the body, a route parameter in `metadata`) or a
// caller of log() or record() hands over, the diffs of the change keep their half: the padded part
// is what gets cut, with its own marker.
const MAX_ENTRY_BYTES = 8192;

@Controller()
class PaddingController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post('tagged/:tag')
  async tagged(@Param('tag') _tag: string, @Body() body: { title: string }): Promise<{ id: string }> {
    const repo = this.db.getRepository(Contract);
    return { id: (await repo.save(repo.create({ title: body.title, counterparty: 'Acme' }))).id };
  }

  @Post('pair')
  async pair(@Body() body: { titles: string[] }): Promise<void> {
    const repo = this.db.getRepository(Contract);
    for (const title of body.titles) await repo.save(repo.create({ title, counterparty: 'Acme' }));
  }

  @Post('recorded')
  recorded(@Headers('x-request-id') requestId: string, @Body() body: { title: string; notes: string }): Promise<void> {
    return this.db.transaction(async (manager) => {
      await manager.save(manager.create(Contract, { title: body.title, counterparty: 'Acme' }));
      await this.audit.record({ action: 'contract_recorded', requestId, changes: { notes: body.notes } }, { manager });
    });
  }
}

type Fields = Record<string, [unknown, unknown]>;
interface StoredChanges {
  _truncated?: true;
  preview?: string;
  entities?: { op: string; fields: Fields }[];
  entitiesOmitted?: number;
}

describe('a row whose body, metadata or caller values pass maxEntryBytes keeps its diffs', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  const stored = async (requestId: string) => {
    const changes = (await changesOf(db, requestId)) as StoredChanges;
    const [{ metadata }] = await db.query<{ metadata: unknown }>('SELECT metadata FROM audit_log WHERE request_id = $1', [requestId]);
    const bytes = Buffer.byteLength(JSON.stringify(changes)) + Buffer.byteLength(JSON.stringify(metadata));
    return { changes, metadata: metadata as { _truncated?: true }, bytes };
  };
  const titles = (changes: StoredChanges) =>
    changes.entities?.map((change) => [change.op, change.fields.title, change.fields.counterparty]);

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync', maxEntryBytes: MAX_ENTRY_BYTES }, { controllers: [PaddingController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('keeps the diff of the change and cuts the body padded first', async () => {
    const response = await request(app.getHttpServer())
      .post('/contracts')
      .set('x-request-id', 'big-body')
      .send({ padding: 'n'.repeat(100_000), title: 'Small title', counterparty: 'Acme' });
    expect(response.status).toBe(201);
    const { changes, bytes } = await stored('big-body');
    expect(titles(changes)).toEqual([['insert', [null, 'Small title'], [null, 'Acme']]]);
    expect(changes).toMatchObject({ _truncated: true, preview: expect.stringMatching(/^\{"body":\{"padding":"n+$/) as unknown });
    expect(bytes).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
  });

  it('keeps the diff and cuts the metadata when a route parameter is padded, and when both are', async () => {
    const tag = 't'.repeat(12_000);
    await request(app.getHttpServer()).post(`/tagged/${tag}`).set('x-request-id', 'big-param').send({ title: 'Tagged' }).expect(201);
    await request(app.getHttpServer())
      .post(`/tagged/${tag}`)
      .set('x-request-id', 'big-both')
      .send({ title: 'Both', padding: 'n'.repeat(50_000) })
      .expect(201);
    const param = await stored('big-param');
    expect(titles(param.changes)).toEqual([['insert', [null, 'Tagged'], [null, 'Acme']]]);
    expect(param.changes._truncated).toBeUndefined();
    expect(param.metadata._truncated).toBe(true);
    const both = await stored('big-both');
    expect(titles(both.changes)).toEqual([['insert', [null, 'Both'], [null, 'Acme']]]);
    expect([both.changes._truncated, both.metadata._truncated]).toEqual([true, true]);
    expect(Math.max(param.bytes, both.bytes)).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
  });

  it('keeps the diffs of a log() in auditScope() and of a record() whose own changes and metadata are too large', async () => {
    const audit = app.get(AuditService);
    const contracts = app.get(DataSource).getRepository(Contract);
    await auditScope(async () => {
      await contracts.save(contracts.create({ title: 'Imported', counterparty: 'Acme' }));
      await audit.log({
        action: 'import',
        requestId: 'big-log',
        changes: { rows: 'r'.repeat(100_000) },
        metadata: { m: 'm'.repeat(100_000) },
      });
    });
    await request(app.getHttpServer())
      .post('/recorded')
      .set('x-request-id', 'big-record')
      .send({ title: 'Recorded', notes: 'n'.repeat(100_000) })
      .expect(201);
    for (const [requestId, title] of [
      ['big-log', 'Imported'],
      ['big-record', 'Recorded'],
    ]) {
      const { changes, bytes } = await stored(requestId);
      expect(titles(changes)).toEqual([['insert', [null, title], [null, 'Acme']]]);
      expect(changes._truncated).toBe(true);
      expect(bytes).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
    }
  });

  it('cuts values of diffs that alone pass half of maxEntryBytes as JSON, every change kept with its names', async () => {
    // A quote counts one character where the capture measures and two bytes of JSON: the three changes pass the half only as JSON.
    const sent = ['"'.repeat(1100), '"'.repeat(1100), '"'.repeat(1100)];
    await request(app.getHttpServer()).post('/pair').set('x-request-id', 'big-diffs').send({ titles: sent }).expect(201);
    const { changes, bytes } = await stored('big-diffs');
    const kept = changes.entities ?? [];
    expect(changes.entitiesOmitted).toBeUndefined();
    expect(kept.map((change) => [change.op, Object.keys(change.fields)])).toEqual(
      sent.map(() => ['insert', ['id', 'title', 'counterparty']]),
    );
    const cut = { _truncated: true, originalBytes: Buffer.byteLength(JSON.stringify(sent[0])) };
    const titlesKept = kept.map((change) => change.fields.title[1]);
    expect(titlesKept).toContainEqual(cut);
    for (const title of titlesKept) expect([sent[0], cut]).toContainEqual(title);
    expect(Buffer.byteLength(JSON.stringify({ entities: kept, entitiesOmitted: changes.entitiesOmitted }))).toBeLessThanOrEqual(
      MAX_ENTRY_BYTES / 2,
    );
    expect(bytes).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
  });
});

describe('a padded body with personal values kept apart and entries authenticated', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = await startDiffsApp(db, {
      mode: 'sync',
      maxEntryBytes: MAX_ENTRY_BYTES,
      privacy: { personalData: ['changes.body.counterparty', 'changes.entities[].fields.counterparty'] },
      integrity: { enabled: true, intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  });

  it('keeps the diff, its personal value apart and committed to, and the row verifies', async () => {
    const response = await request(app.getHttpServer())
      .post('/contracts')
      .set('x-request-id', 'private-body')
      .send({ counterparty: 'Jane Roe', title: 'Private', padding: 'n'.repeat(100_000) })
      .expect(201);
    const id = (response.body as Contract).id;
    const changes = (await changesOf(db, 'private-body')) as StoredChanges;
    expect(changes).toMatchObject({ _truncated: true, entities: [{ op: 'insert', fields: { title: [null, 'Private'] } }] });
    expect(JSON.stringify(changes)).not.toContain('Jane Roe');
    const [row] = await db.query<{ personal: string }>(`SELECT personal FROM audit_log WHERE request_id = 'private-body'`);
    expect((JSON.parse(row.personal) as { values: [unknown[], string][] }).values.map(([path]) => path)).toEqual([
      ['changes', 'body', 'counterparty'],
      ['changes', 'entities', 0, 'fields', 'counterparty'],
    ]);
    const [read] = (await app.get(AuditQueryService).history('Contract', id)).items;
    expect((read.changes as StoredChanges).entities?.[0].fields.counterparty).toEqual([null, 'Jane Roe']);
    expect((await verify(db.url(), '--entry-key', entryKey)).anomalies).toEqual([]);
  }, 60_000);
});
