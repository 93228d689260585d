import { type INestApplication } from '@nestjs/common';
import { getRepositoryToken } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { AUDIT_DATA_SOURCE } from '../src/app.module';
import { type Repository } from 'typeorm';
import { AuditLog, AuditService } from '../src/audit';
import {
  type AuditRepositoryDouble,
  failingAuditRepository,
  flakyAuditRepository,
  hangingAuditRepository,
  waitForAuditState,
} from '../src/audit/testing';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The testing pattern users write: the AuditLog repository overridden by a double that has only
// `insert`, a jest mock. It must drive the module: reject → down, hang → write timeout, resolve →
// the buffer flushes through it and the service is up again.
describe('the AuditLog repository overridden by a double with only insert()', () => {
  let db: TestPostgres;
  let stderr: StderrCapture;
  let app: INestApplication<Server>;
  const insert = jest.fn<Promise<unknown>, [AuditLog[]]>();

  const createNda = (n: number) =>
    request(app.getHttpServer())
      .post('/ndas')
      .set('x-user-id', `user-${n}`)
      .send({ title: `NDA ${n}`, counterparty: 'Initech' });
  const state = () => app.get(AuditService).status().state;

  beforeAll(async () => {
    db = await TestPostgres.start();
    stderr = new StderrCapture();
    app = await startExampleApp(
      {
        DATABASE_URL: db.url(),
        AUDIT_DATABASE_URL: undefined,
        AUDIT_RETRY_BACKOFF_MS: '100',
        AUDIT_RETRY_BACKOFF_MAX_MS: '100',
        AUDIT_WRITE_TIMEOUT_MS: '300',
        AUDIT_SPOOL_DIR: undefined,
        AUDIT_MODE: undefined,
      },
      (builder) => builder.overrideProvider(getRepositoryToken(AuditLog, AUDIT_DATA_SOURCE)).useValue({ insert }),
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('rejecting: requests succeed, the service is down, entries buffered with their lines, health 503', async () => {
    insert.mockRejectedValue(new Error('db down'));
    expect((await createNda(1)).status).toBe(201);
    await eventually(() => stderr.of('audit.buffered').length === 1, 5000, 'one buffered line');
    expect(state()).not.toBe('up');
    expect(stderr.of('audit.db_write_failed')[0]).toMatchObject({ error: { message: 'db down' } });
    expect((await request(app.getHttpServer()).get('/health')).status).toBe(503);
  });

  it('never settling: the write timeout takes the entry', async () => {
    insert.mockReturnValue(new Promise(() => undefined));
    const before = stderr.of('audit.db_write_failed').length;
    await eventually(() => stderr.of('audit.db_write_failed').length > before, 5000, 'a timed-out try');
    expect(stderr.of('audit.db_write_failed').at(-1)).toMatchObject({ error: { code: 'AUDIT_WRITE_TIMEOUT' } });
  });

  it('resolving again: the buffered entries go through it once, and the service is up', async () => {
    insert.mockReset();
    insert.mockResolvedValue({});
    const buffered = stderr.of('audit.buffered').map((line) => line.auditId);
    await eventually(() => state() === 'up' && stderr.of('audit.recovered').length === 1, 5000, 'the recovery');
    const written = insert.mock.calls.flatMap(([rows]) => rows.map((row) => row.id));
    expect(written).toEqual(expect.arrayContaining(buffered));
    expect(new Set(written).size).toBe(written.length);
    expect(insert.mock.calls[0][0][0]).toMatchObject({ action: 'nda_created', entityType: 'NDA', occurredAt: expect.any(Date) });
    expect((await request(app.getHttpServer()).get('/health')).status).toBe(200);
  });
});

// The same with the real repository and a spy on its insert, set up after start-up.
describe('the real AuditLog repository with jest.spyOn(repository, "insert")', () => {
  let db: TestPostgres;
  let stderr: StderrCapture;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    stderr = new StderrCapture();
    app = await startExampleApp({
      DATABASE_URL: db.url(),
      AUDIT_DATABASE_URL: undefined,
      AUDIT_RETRY_BACKOFF_MS: '100',
      AUDIT_RETRY_BACKOFF_MAX_MS: '100',
      AUDIT_WRITE_TIMEOUT_MS: '1000',
      AUDIT_SPOOL_DIR: undefined,
      AUDIT_MODE: undefined,
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('fails while the spy rejects, and commits each entry once through the real insert when restored', async () => {
    const repository = app.get<Repository<AuditLog>>(getRepositoryToken(AuditLog, AUDIT_DATA_SOURCE));
    const spy = jest.spyOn(repository, 'insert').mockRejectedValue(new Error('db down'));
    const ids: string[] = [];
    for (let n = 0; n < 3; n += 1) {
      const response = await request(app.getHttpServer())
        .post('/ndas')
        .send({ title: `NDA ${n}`, counterparty: 'Initech' });
      ids.push((response.body as { id: string }).id);
    }
    await eventually(() => stderr.of('audit.buffered').length === 3, 5000, 'three buffered lines');
    expect(app.get(AuditService).status().state).not.toBe('up');
    expect(await db.query('SELECT 1 FROM audit_log')).toEqual([]);

    spy.mockRestore();
    await eventually(() => stderr.of('audit.recovered').length === 1, 5000, 'the recovery');
    const rows = await db.query<{ entity_id: string }>('SELECT entity_id FROM audit_log');
    expect(rows.map((r) => r.entity_id).sort()).toEqual([...ids].sort());
  });
});

// The testing entry point's doubles and waitForAuditState, as the README shows them.
describe('the testing entry point', () => {
  let db: TestPostgres;
  let stderr: StderrCapture;
  const env = {
    AUDIT_DATABASE_URL: undefined,
    AUDIT_RETRY_BACKOFF_MS: '50',
    AUDIT_RETRY_BACKOFF_MAX_MS: '50',
    AUDIT_WRITE_TIMEOUT_MS: '200',
    AUDIT_SPOOL_DIR: undefined,
    AUDIT_MODE: undefined,
  };
  const start = (audit: AuditRepositoryDouble) =>
    startExampleApp({ ...env, DATABASE_URL: db.url() }, (builder) =>
      builder.overrideProvider(getRepositoryToken(AuditLog, AUDIT_DATA_SOURCE)).useValue(audit),
    );

  beforeAll(async () => {
    db = await TestPostgres.start();
    stderr = new StderrCapture();
  }, 60_000);

  afterAll(async () => {
    stderr?.restore();
    await db?.stop();
  });

  it('hangingAuditRepository: every write ends by the write timeout', async () => {
    const app = await start(hangingAuditRepository());
    try {
      await request(app.getHttpServer()).post('/ndas').send({ title: 'NDA', counterparty: 'Initech' });
      const status = await waitForAuditState(app.get(AuditService), 'down');
      expect(status.lastError).toMatchObject({ code: 'AUDIT_WRITE_TIMEOUT' });
    } finally {
      await app.close();
    }
  });

  it('flakyAuditRepository: down after the first failures, then up by itself with every entry written once', async () => {
    const audit = flakyAuditRepository({ failures: 2 });
    const app = await start(audit);
    try {
      const ids: string[] = [];
      for (let n = 0; n < 3; n += 1) {
        ids.push(
          (
            (
              await request(app.getHttpServer())
                .post('/ndas')
                .send({ title: `NDA ${n}`, counterparty: 'Initech' })
            ).body as { id: string }
          ).id,
        );
      }
      await waitForAuditState(app.get(AuditService), (s) => s.state === 'up' && s.buffered === 0 && s.pending === 0);
      expect(audit.calls.length).toBeGreaterThan(2);
      expect([...audit.rows.values()].map((row) => row.entityId).sort()).toEqual([...ids].sort());
    } finally {
      await app.close();
    }
  });

  it('waitForAuditState names the last status when the state is not reached', async () => {
    const app = await start(failingAuditRepository());
    try {
      await expect(waitForAuditState(app.get(AuditService), 'half-open', { timeoutMs: 50 })).rejects.toThrow(
        /did not reach state 'half-open' within 50 ms; last status: \{"state":"up"/,
      );
    } finally {
      await app.close();
    }
  });
});
