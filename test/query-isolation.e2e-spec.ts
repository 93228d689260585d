import { type INestApplication, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import request from 'supertest';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, type AuditModuleOptions, AuditSealer, AuditService } from '../src/audit';
import { HealthController } from '../src/health/health.controller';
import { eventually } from './support/app';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';

// 30k rows of 2 KB: an export of about 70 MB, more than the sockets' buffers and the stream's
// read-ahead can hold, so an export whose client stops reading stays open, holding its connection.
const ROWS = 30_000;
const NOTE = 'x'.repeat(2000);

/** A client that sends its request, reads the first bytes of the answer, and never reads again. */
interface StalledClient {
  socket: Socket;
  status: number;
  head: string;
}

/** Every client's socket, destroyed after the suite. */
const sockets: Socket[] = [];

function openAndStall(port: number, path: string): Promise<StalledClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    // Reset when the server ends the export: that is the point.
    socket.on('error', () => undefined);
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-auditor: yes\r\n\r\n`));
    socket.once('readable', () => {
      const head = (socket.read() as Buffer | null)?.toString('latin1') ?? '';
      resolve({ socket, status: Number(head.slice(9, 12)), head });
    });
    socket.once('close', () => reject(new Error('closed before any answer')));
  });
}

/** Reads the rest of what the server sent until it closes: false when the response was cut short (no last chunk). */
function readToEnd(client: StalledClient): Promise<boolean> {
  return new Promise((resolve) => {
    let tail = client.head.slice(-5);
    client.socket.on('data', (chunk: Buffer) => (tail = (tail + chunk.toString('latin1')).slice(-5)));
    client.socket.once('end', () => resolve(tail === '0\r\n\r\n'));
    client.socket.resume();
  });
}

@Module({ controllers: [HealthController], imports: [TerminusModule] })
class HealthModule {}

async function startApp(url: string, audit: AuditModuleOptions = {}): Promise<INestApplication<Server>> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url, entities: [AuditLog], migrations: [...AUDIT_MIGRATIONS], migrationsRun: true }),
      AuditModule.forRoot({
        mode: 'sync',
        writeTimeoutMs: 1500,
        readTimeoutMs: 30_000,
        integrity: { enabled: true, intervalMs: 200 },
        ...audit,
        http: { guard: AuditorHeaderGuard },
      }),
      HealthModule,
    ],
  })
  class IsolationAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [IsolationAppModule] }).compile();
  const app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
  await app.listen(0, '127.0.0.1');
  return app;
}

// DESIGN promise 11: reads have their own bounded connections and never starve writes. Clients
// that open GET /audit/export and never read must not take the connections the writer, the
// sealer and /health depend on, must be told to come back when the read slots are taken, and
// must not hold the app's shutdown.
describe('reads never starve writes', () => {
  let db: TestPostgres;
  let app: INestApplication<Server> | undefined;
  /** Apps a test started and has not closed, closed after the suite. */
  const apps: INestApplication<Server>[] = [];
  const clients: StalledClient[] = [];
  const portOf = (target: INestApplication<Server>) => (target.getHttpServer().address() as AddressInfo).port;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startApp(db.url());
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, changes)
       SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, timestamptz '2026-10-01' + g * interval '1 second',
         'bulk_imported', 'NDA', 'bulk-' || g, 'user-' || g % 7, 'success', jsonb_build_object('n', g, 'note', $1::text)
       FROM generate_series(1, ${ROWS}) AS g`,
      [NOTE],
    );
    const sealed = async () => (await db.query<{ n: number }>(`SELECT coalesce(sum(row_count), 0)::int AS n FROM audit_seal`))[0].n;
    await eventually(async () => (await sealed()) >= ROWS, 30_000, 'the seeded rows sealed');
  }, 90_000);

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    for (const started of [app, ...apps]) await started?.close();
    await db?.stop();
  });

  it('ten clients that open the export and never read: a write commits in time, /health stays up, sealing goes on', async () => {
    const live = app as INestApplication<Server>;
    const opening = Array.from({ length: 10 }, () => openAndStall(portOf(live), '/audit/export?format=ndjson'));
    // Every client answered, or a few seconds for those still waiting for a connection (readTimeoutMs is long here).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(opening), new Promise((resolve) => (timer = setTimeout(resolve, 3000)))]);
    clearTimeout(timer);

    const audit = live.get(AuditService);
    const sealer = live.get(AuditSealer);
    const sealed = sealer.status()?.sealed ?? 0;
    // Sync mode: log() returns once the entry is committed, or once writeTimeoutMs has passed and it went elsewhere.
    await audit.log({ action: 'nda_updated', entityType: 'NDA', entityId: 'during-the-stall', userId: 'writer' });
    expect(audit.status()).toMatchObject({ state: 'up', lastError: null });
    expect(await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'during-the-stall'`)).toHaveLength(1);
    const health = await request(live.getHttpServer()).get('/health').expect(200);
    expect(health.body).toMatchObject({ status: 'ok', info: { audit_db: { status: 'up', state: 'up' } } });
    await eventually(() => (sealer.status()?.sealed ?? 0) > sealed && sealer.status()?.failures === 0, 15_000, 'the new row sealed');

    // A page still reads: exports never take every read connection.
    await request(live.getHttpServer()).get('/audit?entityId=during-the-stall').set('x-auditor', 'yes').expect(200);
    // The exports past the limit were told at once to come back later.
    clients.push(...(await Promise.all(opening)));
    expect(clients.filter((client) => client.status === 200)).toHaveLength(2);
    for (const client of clients.filter((c) => c.status !== 200)) {
      expect(client.status).toBe(503);
      expect(client.head).toMatch(/\r\nretry-after: \d+\r\n/i);
      expect(client.head).toContain('"code":"AUDIT_READ_BUSY"');
    }
  }, 60_000);

  it('shuts down at once while exports are stalled, ending them', async () => {
    const other = await startApp(db.url());
    apps.push(other);
    const stalled = await Promise.all([1, 2].map(() => openAndStall(portOf(other), '/audit/export?format=csv')));
    expect(stalled.map((client) => client.status)).toEqual([200, 200]);
    await other.close();
    apps.splice(apps.indexOf(other), 1);
    // Each stalled response was ended without its last chunk: a client never takes it for a whole export.
    expect(await Promise.all(stalled.map(readToEnd))).toEqual([false, false]);
  }, 20_000);

  it('ends an export whose client stops reading for exportIdleMs, and gives its slot to the next', async () => {
    const live = await startApp(db.url(), { exportIdleMs: 1000, maxExports: 1 });
    apps.push(live);
    const stalled = await openAndStall(portOf(live), '/audit/export?format=csv');
    expect(stalled.status).toBe(200);
    const next = () => request(live.getHttpServer()).get('/audit/export?entityId=bulk-1').set('x-auditor', 'yes');
    await next().expect(503);
    // Once the idle export is ended, its slot takes the next export, read whole.
    const answer = await eventually(
      async () => {
        const response = await next();
        return response.status === 200 && response;
      },
      15_000,
      'the slot given back',
    );
    expect(answer.text.trim().split('\n')).toHaveLength(1);
    // The stalled client, reading again, finds its response cut short: never a complete-looking export.
    expect(await readToEnd(stalled)).toBe(false);
  }, 30_000);
});
