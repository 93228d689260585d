import { CreateAuditLog1732700000000 } from '../../migrations/1732700000000-CreateAuditLog';
import { AuditIntegrity1764300000000 } from '../../migrations/1764300000000-AuditIntegrity';
import { AuditReadIndexes1764300000001 } from '../../migrations/1764300000001-AuditReadIndexes';
import { AuditDatabaseColumns1764800000020 } from '../../migrations/1764800000020-AuditDatabaseColumns';
import { AuditEntryAuth1764900000000 } from '../../migrations/1764900000000-AuditEntryAuth';
import { AuditMigrationsRefuseForeignTriggers1764999000000 } from '../../migrations/1764999000000-AuditMigrationsRefuseForeignTriggers';
import { AuditPartitions1765000000000 } from '../../migrations/1765000000000-AuditPartitions';
import { AuditRetention1765100000000 } from '../../migrations/1765100000000-AuditRetention';
import { AuditErasure1765200000000 } from '../../migrations/1765200000000-AuditErasure';
import { AuditRetentionChecks1765300000000 } from '../../migrations/1765300000000-AuditRetentionChecks';
import { AuditSealLinks1765400000000 } from '../../migrations/1765400000000-AuditSealLinks';
import { AuditSealTrustIndexes1765600000000 } from '../../migrations/1765600000000-AuditSealTrustIndexes';
import { AuditPartitionUpkeep1765800000000 } from '../../migrations/1765800000000-AuditPartitionUpkeep';
import { AuditRetireWithoutWaiting1765900000000 } from '../../migrations/1765900000000-AuditRetireWithoutWaiting';
import { AuditRetireByLeaf1766100000000 } from '../../migrations/1766100000000-AuditRetireByLeaf';
import { AuditUpkeepWithoutWaiting1766200000000 } from '../../migrations/1766200000000-AuditUpkeepWithoutWaiting';
import { AuditRetireInChunks1766300000000 } from '../../migrations/1766300000000-AuditRetireInChunks';
import { AuditRetireLegacy1766500000000 } from '../../migrations/1766500000000-AuditRetireLegacy';
import { AuditEntityChanges1766600000000 } from '../../migrations/1766600000000-AuditEntityChanges';
import { AuditRetireLegacyInParts1766700000000 } from '../../migrations/1766700000000-AuditRetireLegacyInParts';
import { AuditSealMonths1766800000000 } from '../../migrations/1766800000000-AuditSealMonths';
import { AuditEraseRefusesForeignTriggers1766900000000 } from '../../migrations/1766900000000-AuditEraseRefusesForeignTriggers';
import { AuditOtherEntitiesIndex1767000000000 } from '../../migrations/1767000000000-AuditOtherEntitiesIndex';
import { AuditOtherEntitiesQualified1767100000000 } from '../../migrations/1767100000000-AuditOtherEntitiesQualified';
import { AuditOtherEntityRefs1767200000000 } from '../../migrations/1767200000000-AuditOtherEntityRefs';

/**
 * Every migration of the audit schema, oldest first. List them all in the audit DataSource's
 * `migrations`: a release that adds one adds it here, so an app that lists this array stays current.
 *
 * @example
 * import { TypeOrmModule } from '@nestjs/typeorm';
 * import { AUDIT_MIGRATIONS, AuditLog } from 'nestjs-failsafe-audit';
 *
 * TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, entities: [AuditLog], migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export const AUDIT_MIGRATIONS = [
  CreateAuditLog1732700000000,
  AuditIntegrity1764300000000,
  AuditReadIndexes1764300000001,
  AuditDatabaseColumns1764800000020,
  AuditEntryAuth1764900000000,
  AuditMigrationsRefuseForeignTriggers1764999000000,
  AuditPartitions1765000000000,
  AuditRetention1765100000000,
  AuditErasure1765200000000,
  AuditRetentionChecks1765300000000,
  AuditSealLinks1765400000000,
  AuditSealTrustIndexes1765600000000,
  AuditPartitionUpkeep1765800000000,
  AuditRetireWithoutWaiting1765900000000,
  AuditRetireByLeaf1766100000000,
  AuditUpkeepWithoutWaiting1766200000000,
  AuditRetireInChunks1766300000000,
  AuditRetireLegacy1766500000000,
  AuditEntityChanges1766600000000,
  AuditRetireLegacyInParts1766700000000,
  AuditSealMonths1766800000000,
  AuditEraseRefusesForeignTriggers1766900000000,
  AuditOtherEntitiesIndex1767000000000,
  AuditOtherEntitiesQualified1767100000000,
  AuditOtherEntityRefs1767200000000,
] as const;
