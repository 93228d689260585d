import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { AuditedEntity } from '../audit';

/**
 * A non-disclosure agreement: the example app's business entity. Its changes are on the audit
 * rows as diffs (`changes.entities`), without the timestamps TypeORM maintains.
 */
@AuditedEntity({ type: 'NDA', exclude: ['createdAt', 'updatedAt'] })
@Entity({ name: 'nda' })
export class Nda {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  title!: string;

  @Column({ type: 'text' })
  counterparty!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
