import { partitionsChecked } from './app';
import {
  Body,
  type CallHandler,
  Controller,
  type ExecutionContext,
  type INestApplication,
  Injectable,
  type LoggerService,
  Module,
  type NestInterceptor,
  Post,
  type Provider,
  Req,
  type Type,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { catchError, concatMap, finalize, from, type Observable, retry } from 'rxjs';
import { Column, DataSource, type EntityManager, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditedEntity, AuditLog, AuditModule, type AuditModuleOptions, AuditService } from '../../src/audit';
import { type TestPostgres } from './postgres';

/** An audited entity whose `number` is unique only at COMMIT (a deferred constraint). */
@AuditedEntity({ type: 'Invoice' })
@Entity('invoice')
export class Invoice {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') number!: string;
}

const INVOICE_TABLE = `CREATE TABLE IF NOT EXISTS invoice (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  number text NOT NULL,
  CONSTRAINT invoice_number_unique UNIQUE (number) DEFERRABLE INITIALLY DEFERRED
)`;

/** Makes `database` on `db` with the audited `invoice` table (its `audit_log` comes with the app's migrations). */
export async function createInvoiceDatabase(db: TestPostgres, database: string): Promise<void> {
  await db.createDatabase(database);
  await db.query(INVOICE_TABLE, [], database);
}

/** Swallows an error on purpose: the handlers below catch what their transactions throw. */
const ignore = () => undefined;

/** Handlers that run their own transactions, catch what fails in them, and answer 201. */
@Controller('invoices')
class InvoicesController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  private save(manager: EntityManager, number: string): Promise<Invoice> {
    return manager.save(manager.create(Invoice, { number }));
  }

  /** record() with the request's tag as its request id, so that a test finds every row of its request. */
  private record(manager: EntityManager, tag: string, action = 'invoice_recorded'): Promise<unknown> {
    return this.audit.record({ action, entityType: 'Invoice', requestId: tag }, { manager });
  }

  @Post('record-rolled-back')
  async recordRolledBack(@Body() body: { tag: string; rolledBack: string; kept: string }): Promise<Invoice> {
    await this.db
      .transaction(async (manager) => {
        await this.save(manager, body.rolledBack);
        await this.record(manager, body.tag);
        throw new Error('refused after record()');
      })
      .catch(ignore);
    return this.db.transaction((manager) => this.save(manager, body.kept));
  }

  @Post('record-in-savepoint')
  async recordInSavepoint(@Body() body: { tag: string; kept: string; dropped: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await this.save(manager, body.kept);
      await manager
        .transaction(async (inner) => {
          await this.save(inner, body.dropped);
          await this.record(inner, body.tag);
          throw new Error('savepoint rolled back after record()');
        })
        .catch(ignore);
    });
  }

  @Post('record-in-released-savepoint')
  async recordInReleasedSavepoint(@Body() body: { tag: string; outer: string; inner: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await this.save(manager, body.outer);
      await manager.transaction(async (inner) => {
        await this.save(inner, body.inner);
        await this.record(inner, body.tag, 'invoice_recorded_in_savepoint');
      });
    });
  }

  @Post('record-outer-rolled-back')
  async recordOuterRolledBack(@Body() body: { tag: string; inner: string }): Promise<void> {
    await this.db
      .transaction(async (manager) => {
        await manager.transaction(async (inner) => {
          await this.save(inner, body.inner);
          await this.record(inner, body.tag);
        });
        throw new Error('outer transaction rolled back after its savepoint was released');
      })
      .catch(ignore);
  }

  @Post('caught-statement')
  async caughtStatement(@Body() body: { tag: string; number: string; record?: boolean }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await this.save(manager, body.number);
      if (body.record) await this.record(manager, body.tag);
      // PostgreSQL aborts the transaction; its COMMIT then answers ROLLBACK, without an error.
      await manager.query('SELECT 1 / 0').catch(ignore);
    });
  }
}

/** The request's transaction, opened by {@link RequestTransactionInterceptor}. */
export interface TransactionalRequest {
  transaction: EntityManager;
}

/**
 * One transaction per request, committed after the handler (a common pattern): bound with
 * `APP_INTERCEPTOR` in the root module, so it sits outside the audit interceptor.
 */
@Injectable()
export class RequestTransactionInterceptor implements NestInterceptor {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const runner = this.db.createQueryRunner();
    return from(runner.startTransaction()).pipe(
      concatMap(() => {
        context.switchToHttp().getRequest<TransactionalRequest>().transaction = runner.manager;
        return next.handle();
      }),
      concatMap(async (value) => {
        await runner.commitTransaction();
        return value;
      }),
      catchError(async (error: unknown) => {
        if (runner.isTransactionActive) await runner.rollbackTransaction();
        throw error;
      }),
      finalize(() => void runner.release()),
    );
  }
}

/** Retries a failed request once (rxjs `retry`): bound with `APP_INTERCEPTOR` in the root module, outside the audit interceptor. */
@Injectable()
export class RetryOnceInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(retry(1));
  }
}

/** Makes `database` on `db` with an `orders` table: `tag` (the request's) and `attempt` (which attempt wrote the row). */
export async function createOrdersDatabase(db: TestPostgres, database: string): Promise<void> {
  await db.createDatabase(database);
  await db.query(
    'CREATE TABLE orders (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tag text NOT NULL, attempt int NOT NULL)',
    [],
    database,
  );
}

/** Handlers that write through the request's transaction; a duplicate number fails its COMMIT. */
@Controller('booked')
class BookedController {
  constructor(private readonly audit: AuditService) {}

  @Post()
  async book(@Req() request: TransactionalRequest, @Body() body: { number: string; twice?: boolean; record?: boolean }): Promise<Invoice> {
    const manager = request.transaction;
    const invoice = await manager.save(manager.create(Invoice, { number: body.number }));
    if (body.twice) await manager.save(manager.create(Invoice, { number: body.number }));
    if (body.record) {
      await this.audit.record(
        { action: 'invoice_booked', entityType: 'Invoice', entityId: invoice.id, requestId: body.number },
        { manager },
      );
    }
    return invoice;
  }
}

export interface AuditAppOptions {
  /** The database on `db` that holds `audit_log` (made beforehand). */
  database: string;
  controllers: Type[];
  /** Bound in the root module (`APP_GUARD`, `APP_INTERCEPTOR`, …). */
  providers?: Provider[];
  /** Modules imported after `AuditModule` (their `APP_INTERCEPTOR`s run inside the audit interceptor). */
  imports?: Type[];
  /** The app's own entities, besides `AuditLog`. */
  entities?: Type[];
  audit?: AuditModuleOptions;
  /** Express by default. */
  platform?: 'express' | 'fastify';
  /** Nest's logger; none by default. */
  logger?: LoggerService;
  /** The DataSource's pool size (TypeORM `poolSize`); `pg`'s default (10) when left out. */
  poolSize?: number;
}

/** An app with the audit module and `controllers` on one DataSource to `database`, listening on a free port. */
export async function startAuditApp(db: TestPostgres, options: AuditAppOptions): Promise<INestApplication<Server>> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: db.url(options.database),
        entities: [...(options.entities ?? []), AuditLog],
        migrations: [...AUDIT_MIGRATIONS],
        migrationsRun: true,
        ...(options.poolSize === undefined ? {} : { poolSize: options.poolSize }),
      }),
      AuditModule.forRoot(options.audit ?? {}),
      ...(options.imports ?? []),
    ],
    controllers: options.controllers,
    providers: options.providers ?? [],
  })
  class AuditAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AuditAppModule] }).compile();
  const logger = options.logger ?? false;
  const app =
    options.platform === 'fastify'
      ? moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger })
      : moduleRef.createNestApplication<INestApplication<Server>>({ logger });
  await app.listen(0, '127.0.0.1');
  await partitionsChecked(app);
  return app as INestApplication<Server>;
}

export interface TxAppOptions {
  /** A database of its own on `db` (made here). */
  database: string;
  audit?: AuditModuleOptions;
  /** Bind {@link RequestTransactionInterceptor} in the root module (routes under `/booked`). */
  requestTransactions?: boolean;
  /** Express by default. */
  platform?: 'express' | 'fastify';
}

/** An app with `audit_log` and the audited `invoice` table in one database and one DataSource. */
export async function startTxApp(db: TestPostgres, options: TxAppOptions): Promise<INestApplication<Server>> {
  await createInvoiceDatabase(db, options.database);
  return startAuditApp(db, {
    database: options.database,
    entities: [Invoice],
    audit: options.audit,
    platform: options.platform,
    controllers: options.requestTransactions ? [BookedController] : [InvoicesController],
    providers: options.requestTransactions ? [{ provide: APP_INTERCEPTOR, useClass: RequestTransactionInterceptor }] : [],
  });
}

/** A row of `audit_log`, as the tests compare it. */
export interface TxRow {
  action: string;
  outcome: string;
  status: number | null;
  changes: Record<string, unknown> | null;
}

/** The rows of `requestId`: the request's own (its `x-request-id`) and those its handler wrote with record(). */
export function txRows(db: TestPostgres, database: string, requestId: string): Promise<TxRow[]> {
  return db.query<TxRow>(
    `SELECT action, outcome, (metadata->>'statusCode')::int AS status, changes FROM audit_log WHERE request_id = $1 ORDER BY occurred_at, id`,
    [requestId],
    database,
  );
}

/** The numbers of the invoices an entity change on `row` names, in order. */
export function numbersOn(row: TxRow): unknown[] {
  const entities = (row.changes?.entities ?? []) as { fields?: { number?: unknown[] } }[];
  return entities.map((change) => change.fields?.number?.[1]);
}
