import { partitionsChecked } from './app';
import { type CanActivate, type ExecutionContext, type INestApplication, Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, type AuditModuleOptions } from '../../src/audit';
import { type TestPostgres } from './postgres';

/** A row to put in `audit_log` directly; unset fields get plain values. */
export interface SeedRow {
  id: string;
  occurredAt: string;
  action?: string;
  entityType?: string | null;
  entityId?: string | null;
  userId?: string | null;
  outcome?: 'success' | 'failure';
  userAgent?: string | null;
  changes?: unknown;
}

/** Lets a request through when its `x-auditor` header is `yes`: the app's guard in these suites. */
@Injectable()
export class AuditorHeaderGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>().headers['x-auditor'] === 'yes';
  }
}

/** An app with the audit module, its read controller on behind {@link AuditorHeaderGuard}, on database `url`. */
export async function startQueryApp(
  url: string,
  options: Pick<AuditModuleOptions, 'readTimeoutMs' | 'readConnections' | 'maxExports' | 'exportIdleMs'> = {},
): Promise<INestApplication<Server>> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url, entities: [AuditLog], migrations: [...AUDIT_MIGRATIONS], migrationsRun: true }),
      AuditModule.forRoot({ ...options, http: { guard: AuditorHeaderGuard } }),
    ],
  })
  class QueryAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [QueryAppModule] }).compile();
  const app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
  await app.listen(0, '127.0.0.1');
  await partitionsChecked(app);
  return app;
}

/** Inserts `rows` into `audit_log` of `database` as the server's owner, in one statement. */
export async function seed(db: TestPostgres, rows: readonly SeedRow[], database = 'postgres'): Promise<void> {
  if (rows.length === 0) return;
  const values = rows.map((r) => [
    r.id,
    r.occurredAt,
    r.action ?? 'nda_updated',
    r.entityType === undefined ? 'NDA' : r.entityType,
    r.entityId === undefined ? 'nda-1' : r.entityId,
    r.userId === undefined ? 'user-1' : r.userId,
    r.outcome ?? 'success',
    r.userAgent ?? null,
    r.changes === undefined ? null : JSON.stringify(r.changes),
  ]);
  const params = values.flat();
  const tuples = values.map((_, i) => `(${Array.from({ length: 9 }, (__, j) => `$${i * 9 + j + 1}`).join(', ')})`);
  await db.query(
    `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, user_agent, changes) VALUES ${tuples.join(', ')}`,
    params,
    database,
  );
}

/** A UUID whose text sorts (and compares in PostgreSQL) by `n`. */
export function orderedId(n: number): string {
  const hex = n.toString(16).padStart(12, '0');
  return `00000000-0000-7000-8000-${hex}`;
}
