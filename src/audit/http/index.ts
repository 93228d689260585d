export { AuditGateGuard } from './audit-gate.guard';
export { AuditHttpRecorder } from './audit-http-recorder';
export { putFirstAmongGlobalGuards } from './first-guard';
export { handlesResponse } from './http-request';
