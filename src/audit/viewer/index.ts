export { AuditViewerController, auditViewerController, type ViewerStatus } from './audit-viewer.controller';
export { VIEWER_CSP, VIEWER_HEADERS } from './viewer-security';
export { type VolumeBucket } from '../query/audit-volume';
