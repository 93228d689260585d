import { type CanActivate, type ExecutionContext, ForbiddenException, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG } from './app-config.module';
import { type AppConfig } from './config';

/** The header an auditor sends the configured token in. */
export const AUDITOR_TOKEN_HEADER = 'x-auditor-token';

/**
 * The example app's auditor role: a request may read the audit trail when its `x-auditor-token`
 * header carries `AUDIT_HTTP_TOKEN`. Without the header, 401; with another value, or when no token
 * is configured, 403. A real app would check a role its authentication put on the request.
 */
@Injectable()
export class AuditReaderGuard implements CanActivate {
  private readonly expected: Buffer | undefined;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.expected = config.auditHttpToken === undefined ? undefined : digest(config.auditHttpToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const sent = context.switchToHttp().getRequest<{ headers: Record<string, string | string[] | undefined> }>().headers[
      AUDITOR_TOKEN_HEADER
    ];
    if (this.expected === undefined) throw new ForbiddenException('Reading the audit trail is off: AUDIT_HTTP_TOKEN is not set');
    if (typeof sent !== 'string' || sent === '')
      throw new UnauthorizedException(`Send the auditor token in the ${AUDITOR_TOKEN_HEADER} header`);
    // Digests of equal length, compared in constant time: the answer says nothing about the token.
    if (!timingSafeEqual(digest(sent), this.expected)) throw new ForbiddenException('This token may not read the audit trail');
    return true;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
