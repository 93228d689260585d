import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { AUDIT_ERROR_CODES, AuditLog, AuditModule, type AuditModuleOptions, AuditService } from '../src/audit';
import { HealthController } from '../src/health/health.controller';
import { eventually } from './support/app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Bad configuration must stop start-up with a message naming what is wrong: every AuditModule
// option, and every environment variable of the example app (run as `node dist/src/main.js`).
// A database without the audit_log table is no configuration error: the module buffers and
// says how to fix it.
const ROOT = join(__dirname, '..');

describe('bad configuration', () => {
  let pg: TestPostgres;
  const dataSources: DataSource[] = [];

  /** The default DataSource on the real server; each one is destroyed after its test. */
  const typeOrm = (database = 'postgres', name?: string) =>
    TypeOrmModule.forRootAsync({
      name,
      useFactory: (): DataSourceOptions =>
        ({ name, type: 'postgres', url: pg.url(database), entities: [AuditLog], retryAttempts: 0 }) as DataSourceOptions,
      dataSourceFactory: async (options) => {
        const dataSource = await new DataSource(options!).initialize();
        dataSources.push(dataSource);
        return dataSource;
      },
    });

  beforeAll(async () => {
    pg = await TestPostgres.start();
  }, 60_000);

  afterEach(async () => {
    await Promise.all(dataSources.splice(0).map((dataSource) => dataSource.isInitialized && dataSource.destroy()));
  });

  afterAll(async () => {
    await pg?.stop();
  }, 30_000);

  describe('AuditModule options: a wrong type, a value out of range or an unknown key stops start-up naming the key', () => {
    const cases: [name: string, options: Record<string, unknown>, code: string][] = [
      ['mode', { mode: 'turbo' }, AUDIT_ERROR_CODES.invalidOption],
      ['bufferSize', { bufferSize: 0 }, AUDIT_ERROR_CODES.invalidOption],
      ['bufferMaxBytes', { bufferMaxBytes: '8MiB' }, AUDIT_ERROR_CODES.invalidOption],
      ['maxEntryBytes', { maxEntryBytes: 10 }, AUDIT_ERROR_CODES.invalidOption],
      ['writeTimeoutMs', { writeTimeoutMs: -1 }, AUDIT_ERROR_CODES.invalidOption],
      ['batchSize', { batchSize: 1_000_000 }, AUDIT_ERROR_CODES.invalidOption],
      ['retryBackoffMs', { retryBackoffMs: 1.5 }, AUDIT_ERROR_CODES.invalidOption],
      ['retryBackoffMaxMs', { retryBackoffMs: 5000, retryBackoffMaxMs: 1000 }, AUDIT_ERROR_CODES.invalidOption],
      ['redactKeys', { redactKeys: 'password' }, AUDIT_ERROR_CODES.invalidOption],
      ['userIdFrom', { userIdFrom: 'x-user-id' }, AUDIT_ERROR_CODES.invalidOption],
      ['auditHttp', { auditHttp: 'yes' }, AUDIT_ERROR_CODES.invalidOption],
      ['bufferSise', { bufferSise: 100 }, AUDIT_ERROR_CODES.unknownOption],
    ];

    it.each(cases)('%s', async (name, options, code) => {
      const compiling = Test.createTestingModule({ imports: [typeOrm(), AuditModule.forRoot(options as AuditModuleOptions)] }).compile();
      await expect(compiling).rejects.toMatchObject({
        name: 'AuditConfigError',
        code,
        message: expect.stringMatching(new RegExp(`\\b${name}\\b`)),
      });
    });

    it('forRootAsync: the factory result is checked too', async () => {
      const compiling = Test.createTestingModule({
        imports: [typeOrm(), AuditModule.forRootAsync({ useFactory: () => ({ writeTimeoutMs: Number.NaN }) })],
      }).compile();
      await expect(compiling).rejects.toMatchObject({
        code: AUDIT_ERROR_CODES.invalidOption,
        message: expect.stringContaining('writeTimeoutMs'),
      });
    });

    it('good options start (so the failures above are the options, not the set-up)', async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [typeOrm(), AuditModule.forRoot({ bufferSize: 10, retryBackoffMs: 100, retryBackoffMaxMs: 100, redactKeys: ['pin'] })],
      }).compile();
      await moduleRef.init();
      expect(moduleRef.get(AuditService).status().state).toBe('up');
      await moduleRef.close();
    });

    it('forRoot takes the static options as the README says: a named DataSource, isGlobal', async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [typeOrm('postgres', 'audit'), AuditModule.forRoot({ dataSource: 'audit', isGlobal: false, bufferSize: 10 })],
      }).compile();
      await moduleRef.init();
      expect(moduleRef.get(AuditService).status().state).toBe('up');
      await moduleRef.close();
    });
  });

  describe('example app environment: a bad value stops `node dist/src/main.js` quickly, naming the variable', () => {
    // An app that accepted the value would keep running (it serves); one that refuses it exits at
    // start, in about a second here, and in 8 s at a load average of 23: the bound tells the two apart.
    const EXIT_WITHIN_MS = 15_000;
    const REFUSED_DB = 'postgres://nobody:nothing@127.0.0.1:1/none';
    let cwd: string;

    beforeAll(async () => {
      await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT });
      // If a bad value were accepted, main.ts must not start an embedded PostgreSQL in the repository.
      cwd = await mkdtemp(join(tmpdir(), 'audit-config-'));
    }, 120_000);

    afterAll(async () => {
      await rm(cwd, { recursive: true, force: true });
    });

    /** Runs the built example app; kills it if it has not exited within {@link EXIT_WITHIN_MS}. */
    const runMain = (env: Record<string, string>) =>
      new Promise<{ code: number | null; output: string; ms: number }>((resolve) => {
        const started = Date.now();
        const child = spawn(process.execPath, [join(ROOT, 'dist/src/main.js')], {
          cwd,
          env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', DATABASE_URL: REFUSED_DB, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_WITHIN_MS);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, output, ms: Date.now() - started });
        });
      });

    const cases: [variable: string, value: string][] = [
      ['AUDIT_BUFFER_SIZE', '0'],
      ['AUDIT_WRITE_TIMEOUT_MS', '2s'],
      ['AUDIT_RETRY_BACKOFF_MS', '-5'],
      ['AUDIT_RETRY_BACKOFF_MAX_MS', '1.5'],
      ['AUDIT_HTTP', 'yes'],
      ['PORT', '70000'],
      ['DATABASE_URL', 'mysql://admin:pw-Secret-9f3@db.internal:3306/app'],
      ['AUDIT_DATABASE_URL', 'postgres//admin:pw-Secret-9f3@db.internal/audit'],
      ['SENTRY_DSN', 'not a dsn'],
    ];

    it.each(cases)(
      '%s=%j',
      async (variable, value) => {
        const { code, output, ms } = await runMain({ [variable]: value });
        expect(ms).toBeLessThan(EXIT_WITHIN_MS);
        expect(code).not.toBe(0);
        expect(output).toContain(variable);
        // A URL may hold a password: the message must not echo it.
        expect(output).not.toContain('pw-Secret-9f3');
      },
      30_000,
    );

    it('AUDIT_RETRY_BACKOFF_MAX_MS below AUDIT_RETRY_BACKOFF_MS', async () => {
      const { code, output, ms } = await runMain({ AUDIT_RETRY_BACKOFF_MS: '5000', AUDIT_RETRY_BACKOFF_MAX_MS: '1000' });
      expect({ code, ms: ms < EXIT_WITHIN_MS, namesVariable: output.includes('AUDIT_RETRY_BACKOFF_MAX_MS') }).toEqual({
        code: 1,
        ms: true,
        namesVariable: true,
      });
    }, 20_000);
  });

  describe('audit_log missing (migration not run)', () => {
    let app: INestApplication<Server>;
    let stderr: StderrCapture;

    @Module({ controllers: [HealthController], imports: [TerminusModule] })
    class HealthModule {}

    beforeAll(async () => {
      await pg.createDatabase('unmigrated');
      stderr = new StderrCapture();
      const moduleRef = await Test.createTestingModule({
        imports: [typeOrm('unmigrated'), AuditModule.forRoot({ retryBackoffMs: 100, retryBackoffMaxMs: 200 }), HealthModule],
      }).compile();
      app = moduleRef.createNestApplication({ logger: false });
      await app.listen(0, '127.0.0.1');
    }, 30_000);

    afterAll(async () => {
      await app?.close();
      stderr?.restore();
    });

    it('is reported on /health with the SQLSTATE and the fix, and entries still go to the ring and stderr', async () => {
      const audit = app.get(AuditService);
      const ids = ['a', 'b', 'c'];
      for (const id of ids) await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: id });

      const health = await eventually(async () => {
        const response = await request(app.getHttpServer()).get('/health');
        return response.status === 503 && response;
      });
      const details = (health.body as { error: { audit_db: { buffered: number; lastError: string } } }).error.audit_db;
      expect(details.lastError).toContain('42P01');
      expect(details.lastError).toContain('run the CreateAuditLog migration');
      expect(details.buffered).toBe(3);
      expect(stderr.of('audit.buffered').map((line) => line.entityId)).toEqual(ids);
      expect(stderr.of('audit.db_write_failed')[0]).toMatchObject({ error: { code: '42P01' } });

      await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'd' });
      await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'e' });
      const later = await request(app.getHttpServer()).get('/health');
      expect(later.status).toBe(503);
      expect((later.body as { error: { audit_db: { buffered: number } } }).error.audit_db.buffered).toBe(5);
      expect(stderr.of('audit.buffered').map((line) => line.entityId)).toEqual([...ids, 'd', 'e']);
      expect(stderr.other).toEqual([]);
    });
  });
});
