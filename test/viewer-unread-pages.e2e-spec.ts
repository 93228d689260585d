import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule } from '../src/audit';
import { partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';

// CHANGELOG "Page answers that their clients never read held memory without bound" and
// docs/GUIDE.md: "At most readConnections page answers now wait for clients that do not read
// them; the next is refused (503 AUDIT_READ_BUSY)". With `viewer: true` the viewer's panel
// answers the same pages (`<path>/viewer/rows`, up to 500 rows of up to maxEntryBytes each):
// clients that ask there and never read must be bounded the same way.
const ROWS = 500;
const NOTE = 'x'.repeat(40_000);
const CLIENTS = 5;

/** Sends a request, waits for the first bytes of the answer (its status), and then never reads again. */
function askAndStall(sockets: Socket[], port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-auditor: yes\r\n\r\n`));
    socket.once('readable', () => {
      const head = (socket.read(12) as Buffer | null)?.toString('latin1') ?? '';
      socket.pause();
      resolve(Number(head.slice(9, 12)));
    });
    socket.once('close', () => reject(new Error('closed before any answer')));
  });
}

describe('viewer pages that their clients never read', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    db = await TestPostgres.start();
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ readConnections: 2, maxExports: 1, http: { guard: AuditorHeaderGuard, viewer: true } }),
      ],
    })
    class ViewerAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [ViewerAppModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
    await partitionsChecked(app);
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, changes)
       SELECT gen_random_uuid(), timestamptz '2026-10-01' + g * interval '1 second', 'nda_updated', 'NDA', 'big', 'user-1', 'success',
         jsonb_build_object('n', g, 'note', $1::text)
       FROM generate_series(1, ${ROWS}) AS g`,
      [NOTE],
    );
  }, 90_000);

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await app?.close();
    await db?.stop();
  });

  it(`answers readConnections (2) of ${CLIENTS} viewer pages never read, and refuses the others`, async () => {
    const port = (app.getHttpServer().address() as AddressInfo).port;
    const statuses: number[] = [];
    for (let i = 0; i < CLIENTS; i += 1) statuses.push(await askAndStall(sockets, port, `/audit/viewer/rows?entityId=big&limit=${ROWS}`));
    expect(statuses).toEqual([200, 200, ...Array<number>(CLIENTS - 2).fill(503)]);
  }, 60_000);
});
