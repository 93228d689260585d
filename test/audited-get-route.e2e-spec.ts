import { Controller, Get, type INestApplication, type LoggerService, Param } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Audited } from '../src/audit';
import { TestPostgres } from './support/postgres';
import { startAuditApp } from './support/tx-app';

// docs/GUIDE.md, "Name your actions": `@Audited(action)` is a request to record the handler,
// whatever its HTTP method. A mutation reached by GET (an e-mail confirmation link, a one-click
// unsubscribe) is recorded under its action like a POST, in sync mode before the response ends,
// and so is a HEAD that Express or Fastify sends to the same handler. A GET without `@Audited`
// stays unrecorded.

@Controller('subscriptions')
class SubscriptionsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Get(':id/unsubscribe')
  @Audited('subscription_cancelled', { entityType: 'Subscription', entityId: { param: 'id' } })
  async unsubscribe(@Param('id') id: string): Promise<{ id: string; cancelled: true }> {
    await this.db.query('INSERT INTO cancelled (subscription) VALUES ($1)', [id]);
    return { id, cancelled: true };
  }

  @Get(':id')
  async status(@Param('id') id: string): Promise<{ id: string; cancelled: boolean }> {
    const rows = await this.db.query<unknown[]>('SELECT 1 FROM cancelled WHERE subscription = $1', [id]);
    return { id, cancelled: rows.length > 0 };
  }
}

describe.each(['Express', 'Fastify'])('@Audited on a GET route that mutates, behind %s', (platform) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const warnings: string[] = [];
  const database = `audited_get_route_${platform.toLowerCase()}`;
  const logger: LoggerService = {
    log: () => undefined,
    error: () => undefined,
    warn: (message: unknown) => void warnings.push(String(message)),
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query('CREATE TABLE cancelled (subscription text NOT NULL)', [], database);
    app = await startAuditApp(db, {
      database,
      platform: platform === 'Fastify' ? 'fastify' : 'express',
      logger,
      audit: { mode: 'sync' },
      controllers: [SubscriptionsController],
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('records the @Audited GET handler’s mutation under its action before the response ends (sync mode)', async () => {
    await request(app.getHttpServer()).get('/subscriptions/s-42/unsubscribe').set('x-request-id', 'get-42').expect(200);
    expect(await db.query('SELECT subscription FROM cancelled', [], database)).toEqual([{ subscription: 's-42' }]);
    // Sync mode: the row is durable before the response ends.
    const rows = await db.query(
      "SELECT action, entity_type, entity_id, outcome, metadata->>'method' AS method FROM audit_log WHERE request_id = $1",
      ['get-42'],
      database,
    );
    expect(rows).toEqual([
      { action: 'subscription_cancelled', entity_type: 'Subscription', entity_id: 's-42', outcome: 'success', method: 'GET' },
    ]);
  });

  it('records a HEAD that reaches the @Audited GET handler, and leaves a GET without @Audited unrecorded', async () => {
    await request(app.getHttpServer()).head('/subscriptions/s-43/unsubscribe').set('x-request-id', 'head-43').expect(200);
    await request(app.getHttpServer())
      .get('/subscriptions/s-43')
      .set('x-request-id', 'status-43')
      .expect(200, { id: 's-43', cancelled: true });
    const rows = await db.query(
      "SELECT request_id, action, metadata->>'method' AS method FROM audit_log WHERE request_id IN ($1, $2)",
      ['head-43', 'status-43'],
      database,
    );
    expect(rows).toEqual([{ request_id: 'head-43', action: 'subscription_cancelled', method: 'HEAD' }]);
    expect(warnings.filter((message) => message.includes('SubscriptionsController'))).toEqual([]);
  });
});
