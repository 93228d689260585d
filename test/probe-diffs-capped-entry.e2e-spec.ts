import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md: "Diffs take at most half of `maxEntryBytes`" (the other half is the body's,
// metadata's and the fixed fields'), and an oversized entry "is truncated with a marker, never
// rejected" (DESIGN 7). A client that pads its request body past maxEntryBytes (the padding
// first) must not hide from the trail what its request changed: the small diff stays whole, the
// body is what gets cut.
describe('probe: a small diff on a row whose request body passes maxEntryBytes', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('keeps the diff of the change and cuts the body', async () => {
    const response = await request(app.getHttpServer())
      .post('/contracts')
      .set('x-request-id', 'big-body')
      .send({ padding: 'n'.repeat(100_000), title: 'Small title', counterparty: 'Acme' });
    expect(response.status).toBe(201);
    const changes = await changesOf(db, 'big-body');
    const entities = changes.entities as { op: string; fields: Record<string, unknown> }[] | undefined;
    expect(entities?.map((change) => [change.op, change.fields.title, change.fields.counterparty])).toEqual([
      ['insert', [null, 'Small title'], [null, 'Acme']],
    ]);
  });
});
