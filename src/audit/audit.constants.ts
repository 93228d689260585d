/**
 * Injection token of the resolved, validated {@link AuditModuleOptions}.
 *
 * @example
 * @Injectable()
 * class AuditSettings {
 *   constructor(@Inject(AUDIT_OPTIONS) readonly options: ResolvedAuditOptions) {}
 * }
 */
export const AUDIT_OPTIONS = Symbol('AUDIT:OPTIONS');

/** Injection token of the TypeORM repository the audit writer inserts through. */
export const AUDIT_REPOSITORY = Symbol('AUDIT:REPOSITORY');

/** Reflection key under which `@Audited()` stores its metadata. */
export const AUDITED_METADATA = 'audit:action';

/** Actions must be lower-case identifiers, dots and underscores allowed. */
export const ACTION_PATTERN = /^[a-z][a-z0-9_.]*$/;

/** HTTP methods the interceptor audits. */
export const MUTATING_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Sentry fingerprint shared by every audit-database failure, so they group as one issue. */
export const SENTRY_FINGERPRINT = ['audit-db-write-failed'];

/** Sentry fingerprint of the recovery report sent when an outage ends. */
export const SENTRY_RECOVERY_FINGERPRINT = ['audit-db-recovered'];

/** Sentry fingerprint of the report sent when entries are dropped (spool full or failing). */
export const SENTRY_DROPPED_FINGERPRINT = ['audit-entries-dropped'];

/** Sentry fingerprint of the report sent when the database refuses entries for their content. */
export const SENTRY_QUARANTINED_FINGERPRINT = ['audit-entries-quarantined'];

/** Reflection key under which `@AuditedEntity()` stores its options on an entity class. */
export const AUDITED_ENTITY_METADATA = 'audit:entity';
/** Sentry fingerprint of a failed sealing attempt (integrity on). */
export const SENTRY_SEALING_FINGERPRINT = ['audit-sealing-failed'];

/** Sentry fingerprint of a cut seal chain (integrity on): the sealer seals nothing more. */
export const SENTRY_CHAIN_BROKEN_FINGERPRINT = ['audit-chain-broken'];
/** Sentry fingerprint of rows the sealer refused as forged. */
export const SENTRY_FORGED_FINGERPRINT = ['audit-forged-rows'];
