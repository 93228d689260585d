import { type INestApplication } from '@nestjs/common';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Server } from 'node:http';
import request from 'supertest';
import { eventually } from './support/app';
import { changesOf, type Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A row with diffs takes the failure path like any other: the ring with its audit.buffered line,
// the spool when the ring evicts it, and the recovery flush, which stores it whole.
describe('diffs through an audit-table outage', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  let spoolRoot: string;

  beforeAll(async () => {
    db = await TestPostgres.start();
    spoolRoot = await mkdtemp(join(tmpdir(), 'audit-diffs-spool-'));
    stderr = new StderrCapture();
    // writeTimeoutMs is also the deadline of each spool file operation: the module's default, not a
    // shorter one, so that a loaded disk still takes the evicted entry (a write waits it out on the lock).
    app = await startDiffsApp(db, {
      retryBackoffMs: 200,
      retryBackoffMaxMs: 400,
      bufferSize: 1,
      spoolDir: join(spoolRoot, 'spool'),
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (spoolRoot) await rm(spoolRoot, { recursive: true, force: true });
  });

  it('buffers, spools and then flushes whole the rows that carry diffs', async () => {
    const created = await request(app.getHttpServer())
      .post('/contracts')
      .set('x-request-id', 'before-outage')
      .send({ title: 'v1', counterparty: 'Acme' })
      .expect(201);
    const id = (created.body as Contract).id;
    // Its row committed before the table is held: the outage has the two updates only, one of them evicted.
    await changesOf(db, 'before-outage');
    const locker = await db.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
    try {
      for (const [n, title] of [
        [1, 'v2'],
        [2, 'v3'],
      ] as const) {
        await request(app.getHttpServer()).patch(`/contracts/${id}`).set('x-request-id', `outage-${n}`).send({ title }).expect(200);
      }
      const buffered = await eventually(
        () => stderr.of('audit.buffered').length >= 2 && stderr.of('audit.buffered'),
        5000,
        'two buffered lines',
      );
      const entries = buffered.map((line) => line.entry as { requestId: string; changes: { entities: unknown[] } });
      expect(entries.find((e) => e.requestId === 'outage-1')?.changes.entities).toEqual([
        { type: 'Contract', id, op: 'update', fields: { title: ['v1', 'v2'] } },
      ]);
      // The ring holds one entry: the first was evicted to the spool.
      await eventually(() => stderr.of('audit.spooled').length === 1, 10_000, 'an entry spooled');
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    await eventually(() => stderr.of('audit.recovered').length === 1, 10_000, 'recovery');
    expect(await changesOf(db, 'outage-1')).toEqual({
      body: { title: 'v2' },
      entities: [{ type: 'Contract', id, op: 'update', fields: { title: ['v1', 'v2'] } }],
    });
    expect(await changesOf(db, 'outage-2')).toEqual({
      body: { title: 'v3' },
      entities: [{ type: 'Contract', id, op: 'update', fields: { title: ['v2', 'v3'] } }],
    });
    expect(stderr.of('audit.dropped')).toEqual([]);
  });
});
