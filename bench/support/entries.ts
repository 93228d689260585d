import { type AuditEntry } from '../../src/audit';
import { uuidv7 } from '../../src/audit/uuidv7';

const ACTIONS = ['nda_created', 'nda_updated', 'nda_signed', 'nda_deleted'];
const AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** One `audit_log` row as the module writes it, in the writer's column order. */
export interface AuditRow {
  id: string;
  occurredAt: string;
  action: string;
  entityType: string;
  entityId: string;
  userId: string;
  outcome: 'success';
  ip: string;
  userAgent: string;
  requestId: string;
  changes: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

/**
 * `count` realistic audit entries: an NDA mutation with a `changes` body of about 350 bytes and
 * the metadata the interceptor records. Deterministic, so every run writes the same content.
 *
 * @example
 * const entries = auditEntries(100_000);
 */
export function auditEntries(count: number): AuditEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    action: ACTIONS[i % ACTIONS.length],
    entityType: 'NDA',
    entityId: `0193a1c2-${String(i).padStart(4, '0').slice(-4)}-7000-8000-${String(i).padStart(12, '0')}`,
    userId: `user-${i % 500}`,
    outcome: 'success',
    ip: `10.0.${(i >> 8) & 255}.${i & 255}`,
    userAgent: AGENT,
    requestId: `req-${i.toString(36).padStart(8, '0')}`,
    changes: {
      body: {
        title: `Mutual NDA for project ${i} (supplier onboarding)`,
        counterparty: `Counterparty Holdings ${i % 97} GmbH`,
        jurisdiction: 'DE',
        term: { months: 24, autoRenew: i % 2 === 0 },
        contacts: [`legal-${i % 13}@example.com`, `sales-${i % 7}@example.com`],
        notes: 'Covers technical drawings, pricing and roadmap shared during the evaluation phase.',
      },
    },
    metadata: { method: 'POST', route: '/ndas', params: {}, statusCode: 201, durationMs: 3.2 },
  }));
}

/**
 * The row `AuditService` would insert for `entry`, with a fresh UUIDv7 `id` (the module's own
 * generator, so raw and naive inserts append to the primary key index exactly as the module does).
 *
 * @example
 * const rows = auditEntries(10).map(toRow);
 */
export function toRow(entry: AuditEntry): AuditRow {
  return {
    id: uuidv7(),
    occurredAt: new Date().toISOString(),
    action: entry.action,
    entityType: String(entry.entityType),
    entityId: String(entry.entityId),
    userId: String(entry.userId),
    outcome: 'success',
    ip: String(entry.ip),
    userAgent: String(entry.userAgent),
    requestId: String(entry.requestId),
    changes: entry.changes as Record<string, unknown>,
    metadata: entry.metadata as Record<string, unknown>,
  };
}

/** The INSERT parameters of `row`, in the order of {@link AUDIT_COLUMNS}. */
export function rowValues(row: AuditRow): unknown[] {
  return [
    row.id,
    row.occurredAt,
    row.action,
    row.entityType,
    row.entityId,
    row.userId,
    row.outcome,
    row.ip,
    row.userAgent,
    row.requestId,
    JSON.stringify(row.changes),
    JSON.stringify(row.metadata),
  ];
}

export { AUDIT_COLUMNS } from '../../src/audit/audit-insert-sql';
