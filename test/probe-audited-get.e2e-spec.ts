import { Controller, Get, type INestApplication, type LoggerService, Module, Param } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, Audited } from '../src/audit';
import { partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

// PROBE (attacker A11): `@Audited(action)` "Names the action the interceptor records for this
// handler" (src/audit/audited.decorator.ts; docs/GUIDE.md, "Name your actions"), and the start-up
// warning lists what the interceptor will not record (GraphQL, RPC, WebSocket handlers; mutating
// routes without an action). A handler the app marks `@Audited` on a GET route (an e-mail
// confirmation link, a one-click unsubscribe: mutations reached by GET) is never recorded: the
// interceptor only tracks POST, PUT, PATCH and DELETE, and nothing at start-up or at run time says
// so. The mutation commits with no row, no stderr line and no warning.

@Controller('subscriptions')
class SubscriptionsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Get(':id/unsubscribe')
  @Audited('subscription_cancelled', { entityType: 'Subscription', entityId: { param: 'id' } })
  async unsubscribe(@Param('id') id: string): Promise<{ id: string; cancelled: true }> {
    await this.db.query('INSERT INTO cancelled (subscription) VALUES ($1)', [id]);
    return { id, cancelled: true };
  }
}

describe('PROBE: @Audited on a GET route that mutates', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const warnings: string[] = [];
  const database = 'probe_audited_get';
  const logger: LoggerService = {
    log: () => undefined,
    error: () => undefined,
    warn: (message: unknown) => void warnings.push(String(message)),
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query('CREATE TABLE cancelled (subscription text NOT NULL)', [], database);
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(database),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ mode: 'sync' }),
      ],
      controllers: [SubscriptionsController],
    })
    class ProbeModule {}
    const moduleRef = await Test.createTestingModule({ imports: [ProbeModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger });
    await app.listen(0, '127.0.0.1');
    await partitionsChecked(app);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('records the @Audited GET handler’s mutation, or says at start-up that it will not', async () => {
    await request(app.getHttpServer()).get('/subscriptions/s-42/unsubscribe').set('x-request-id', 'get-42').expect(200);
    expect(await db.query('SELECT subscription FROM cancelled', [], database)).toEqual([{ subscription: 's-42' }]);
    // Sync mode: a row the interceptor writes is durable before the response ends.
    const rows = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE request_id = $1', ['get-42'], database);
    const warned = warnings.some((message) => message.includes('SubscriptionsController.unsubscribe'));
    expect({ rows, warned }).not.toEqual({ rows: [], warned: false });
  });
});
