import { type INestApplication } from '@nestjs/common';
import { promises as fsp } from 'node:fs';
import { rm } from 'node:fs/promises';
import { type Server } from 'node:http';
import { join, sep } from 'node:path';
import request from 'supertest';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { leftoverDir } from './support/leftovers';

// Issue 19, cases 2 and 3, with the example app over real HTTP and two real PostgreSQL servers:
// a spool or quarantine disk that refuses or never answers. A hung disk call is made by
// replacing `open` of `node:fs/promises` (which the spool and the quarantine call) with one whose
// handles hold the chosen operation until the test lets it go: a real hang cannot be undone.
describe('disk faults on the write path', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let spoolDir: string;
  let stderr: StderrCapture;
  let app: INestApplication<Server> | undefined;
  const releases: (() => void)[] = [];
  /** Far above every bound expected here (a few × the 1000 ms write timeout), far below a hang. */
  const LIVENESS_MS = 8000;

  const start = () =>
    startExampleApp({
      DATABASE_URL: appDb.url(),
      AUDIT_DATABASE_URL: auditDb.url(),
      AUDIT_SPOOL_DIR: spoolDir,
      AUDIT_MODE: 'sync',
      AUDIT_WRITE_TIMEOUT_MS: '1000',
      AUDIT_RETRY_BACKOFF_MS: '100',
      AUDIT_RETRY_BACKOFF_MAX_MS: '200',
      AUDIT_BUFFER_SIZE: undefined,
      SENTRY_DSN: undefined,
    }).then((started) => (app = started));
  const createNda = async (title: string) => {
    const response = await request(app!.getHttpServer()).post('/ndas').send({ title, counterparty: 'Globex' }).timeout(LIVENESS_MS);
    expect(response.status).toBe(201);
    return (response.body as { id: string }).id;
  };
  const health = async () =>
    ((await request(app!.getHttpServer()).get('/health')).body as { details: { audit_db: Record<string, unknown> } }).details.audit_db;
  const rowsFor = async (ids: string[]) =>
    (await auditDb.query<{ entity_id: string }>('SELECT entity_id FROM audit_log WHERE entity_id = ANY($1)', [ids])).map(
      (r) => r.entity_id,
    );
  const settlesWithin = async (promise: Promise<unknown>, ms = LIVENESS_MS) => {
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      promise.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false))),
    ]);
    clearTimeout(timer);
    return settled;
  };

  /** Handles of files matching `match` get `operation` replaced by `fault` (a hold until released, or an error). */
  function faultFiles(match: (path: string, flags: string) => boolean, operation: 'sync' | 'write', fault: 'hang' | { code: string }) {
    const realOpen = fsp.open.bind(fsp);
    let released = false;
    const held: (() => void)[] = [];
    const spy = jest.spyOn(fsp, 'open').mockImplementation(async (path, flags, mode) => {
      const handle = await realOpen(path, flags, mode);
      if (!match(String(path), String(flags))) return handle;
      return new Proxy(handle, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property, target);
          if (property === operation && !released) {
            return async (...args: unknown[]) => {
              if (fault !== 'hang') throw Object.assign(new Error(`${fault.code}: injected`), { code: fault.code });
              await new Promise<void>((resolve) => held.push(resolve));
              return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            };
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    });
    releases.push(() => {
      released = true;
      held.splice(0).forEach((resolve) => resolve());
      spy.mockRestore();
    });
  }
  const isSegment = (path: string, flags: string) => path.endsWith('.ndjson') && flags === 'a' && !path.includes(`${sep}quarantine${sep}`);

  beforeAll(async () => {
    [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    stderr = new StderrCapture();
  }, 60_000);

  beforeEach(async () => {
    spoolDir = join(await leftoverDir('audit-disk'), 'spool');
    stderr.clear();
  });

  afterEach(async () => {
    releases.splice(0).forEach((release) => release());
    await app?.close();
    app = undefined;
    await auditDb.ensureRunning();
    await auditDb.query('ALTER TABLE IF EXISTS audit_log DROP CONSTRAINT IF EXISTS no_poison');
    await rm(join(spoolDir, '..'), { recursive: true, force: true });
  });

  afterAll(async () => {
    stderr?.restore();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
  }, 30_000);

  it('case 3: a quarantine fsync that never returns holds neither the request nor later ones nor app.close()', async () => {
    await start();
    // The first audited request connects the audit DataSource, whose migrations make the table.
    await eventually(async () => (await rowsFor([await createNda('warm-up')])).length === 1, 10_000, 'the audit table');
    await auditDb.query("ALTER TABLE audit_log ADD CONSTRAINT no_poison CHECK (changes::text NOT LIKE '%poison%')");
    faultFiles((path) => path.includes(`${sep}quarantine${sep}`), 'sync', 'hang');

    const poisoned = await createNda('poison pill');
    const later = [await createNda('NDA 1'), await createNda('NDA 2')];
    expect(await rowsFor([poisoned, ...later])).toEqual(expect.arrayContaining(later));
    expect(await rowsFor([poisoned])).toEqual([]);
    expect(await health()).toMatchObject({ state: 'up', quarantined: 1, dropped: 0, diskTimeouts: 1 });
    expect(stderr.of('audit.quarantined')).toEqual([
      expect.objectContaining({
        entityId: poisoned,
        file: null,
        fileError: expect.stringContaining('AUDIT_DISK_TIMEOUT'),
        entry: expect.objectContaining({ entityId: poisoned }),
      }),
    ]);
    expect(await settlesWithin(app!.close())).toBe(true);
    app = undefined;
  });

  it.each(['ENOSPC', 'EIO'])(
    'case 2: sync mode, a spool write failing with %s: the entry goes to the ring and its line, then to the table',
    async (code) => {
      await start();
      faultFiles(isSegment, 'write', { code });
      await auditDb.kill();
      const id = await createNda('NDA during the outage');
      expect(await health()).toMatchObject({ buffered: 1, dropped: 0, spooled: 0 });
      expect(stderr.of('audit.dropped')).toEqual([]);
      expect(stderr.of('audit.buffered')).toEqual([
        expect.objectContaining({
          entityId: id,
          spoolError: expect.stringContaining(code),
          entry: expect.objectContaining({ entityId: id }),
        }),
      ]);
      await auditDb.restart();
      await eventually(async () => (await rowsFor([id])).length === 1, 15_000, 'the ring to be flushed');
    },
  );

  it('case 3: sync mode, a spool fsync that never returns: the response goes out, the entry reaches the table once, app.close() returns', async () => {
    await start();
    faultFiles(isSegment, 'sync', 'hang');
    await auditDb.kill();
    const id = await createNda('NDA during the outage');
    expect(await health()).toMatchObject({ buffered: 1, dropped: 0, diskTimeouts: 1 });
    expect(stderr.of('audit.buffered')).toEqual([
      expect.objectContaining({ entityId: id, spoolError: 'spool_timeout', entry: expect.objectContaining({ entityId: id }) }),
    ]);
    await auditDb.restart();
    await eventually(async () => (await rowsFor([id])).length === 1, 15_000, 'the ring to be flushed');
    expect(await settlesWithin(app!.close())).toBe(true);
    app = undefined;
    expect(await rowsFor([id])).toEqual([id]);
  });
});
