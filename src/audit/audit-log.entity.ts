import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { type AuditOutcome } from './audit-entry';

/**
 * One row of the append-only `audit_log` table. Create the table with {@link AUDIT_MIGRATIONS};
 * the database refuses UPDATE, DELETE and TRUNCATE on it.
 *
 * @example
 * import { TypeOrmModule } from '@nestjs/typeorm';
 *
 * TypeOrmModule.forRoot({ type: 'postgres', url, entities: [AuditLog], migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
@Entity({ name: 'audit_log' })
@Index('audit_log_entity_time_idx', ['entityType', 'entityId', 'occurredAt', 'id'])
@Index('audit_log_time_idx', ['occurredAt', 'id'])
@Index('audit_log_user_time_idx', ['userId', 'occurredAt'])
@Index('audit_log_action_time_idx', ['action', 'occurredAt'])
export class AuditLog {
  /** UUIDv7 made by the client, so a retried insert is recognised and ignored. */
  @PrimaryColumn('uuid')
  id!: string;

  /** Part of the primary key: the table is partitioned by month of `occurred_at` (docs/LIFECYCLE.md), and a retry keeps it. */
  @PrimaryColumn({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @Column({ type: 'text' })
  action!: string;

  @Column({ name: 'entity_type', type: 'text', nullable: true })
  entityType!: string | null;

  @Column({ name: 'entity_id', type: 'text', nullable: true })
  entityId!: string | null;

  @Column({ name: 'user_id', type: 'text', nullable: true })
  userId!: string | null;

  @Column({ type: 'text' })
  outcome!: AuditOutcome;

  @Column({ type: 'text', nullable: true })
  ip!: string | null;

  @Column({ name: 'user_agent', type: 'text', nullable: true })
  userAgent!: string | null;

  @Column({ name: 'request_id', type: 'text', nullable: true })
  requestId!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  changes!: unknown;

  @Column({ type: 'jsonb', nullable: true })
  metadata!: unknown;

  /** The entry's authentication code, made by the module when the entry was created (integrity's entry keys); null without them. */
  @Column({ name: 'auth_code', type: 'text', nullable: true })
  authCode!: string | null;

  /** With the `privacy` option: the row's salt and personal values kept apart, or the erased marker (docs/PRIVACY.md). */
  @Column({ type: 'text', nullable: true, select: false })
  personal!: string | null;

  /** With the `privacy` option: one commitment per personal value, covered by the seal and the entry code instead of the value. */
  @Column({ type: 'text', nullable: true, select: false })
  commitments!: string | null;

  /** Set by the database when the row is committed. */
  @Column({ name: 'recorded_at', type: 'timestamptz', default: () => 'now()' })
  recordedAt!: Date;
}
