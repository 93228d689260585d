import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { type AddressInfo, type Socket } from 'node:net';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule } from '../src/audit';
import { partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';
import { askAndStall, seedBigRows } from './support/unread-pages';
import { AuditorHeaderGuard } from './support/query-app';

// CHANGELOG "Page answers that their clients never read held memory without bound" and
// docs/GUIDE.md: "At most readConnections page answers now wait for clients that do not read
// them; the next is refused (503 AUDIT_READ_BUSY)". With `viewer: true` the viewer's panel
// answers the same pages (`<path>/viewer/rows`, up to 500 rows of up to maxEntryBytes each):
// clients that ask there and never read must be bounded the same way.
const ROWS = 500;
const CLIENTS = 5;

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
    await seedBigRows(db, ROWS);
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
