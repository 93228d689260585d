export { AuditSpool, type SpoolAppendResult, type SpoolRejection } from './audit-spool';
export { FileSpool, type FileSpoolOptions } from './file-spool';
export { decodeSpoolLine, encodeSpoolLine, isAuditRecord, type LineRejection } from './spool-line';
export { nodeSpoolFiles, type SpoolFileHandle, type SpoolFiles } from './spool-files';
export { DiskTimeoutError, SPOOL_ERROR_CODES, SpoolReadError } from './spool-errors';
