export { AuditSealer, type IntegrityStatus } from './audit-sealer';
export { type EntryKey, parseEntryKeys } from './entry-auth';
export { type AuditIntegrityOptions, INTEGRITY_DEFAULTS, type ResolvedIntegrityOptions } from './integrity-options';
export { merkleRoot } from './merkle';
export { leafHash } from './row-encoding';
export { keyIdOf, type Seal, sealHash } from './seal';
export { type Anomaly, ANOMALY_KINDS, type AnomalyKind, type VerifyOptions, type VerifyReport, verifyTrail } from './verifier';
export { readWitness, type WitnessedSeal } from './witness';
