import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { AuditHttpRecorder } from './audit-http-recorder';

/**
 * Lets every request through, after noting each mutating one with its handler. `AuditModule` puts
 * it before every other guard, so a request another guard refuses is still recorded, under its
 * handler's action and with the status it was answered with.
 *
 * @example
 * // Installed for you by AuditModule when auditHttp is on; nothing to register.
 */
@Injectable()
export class AuditGateGuard implements CanActivate {
  constructor(private readonly recorder: AuditHttpRecorder) {}

  canActivate(context: ExecutionContext): boolean {
    this.recorder.track(context);
    return true;
  }
}
