import { type CanActivate, type ExecutionContext, ForbiddenException, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG } from './app-config.module';
import { type AppConfig } from './config';

/** The header an auditor sends the configured token in. */
export const AUDITOR_TOKEN_HEADER = 'x-auditor-token';

/** The realm a browser shows in its sign-in prompt for the audit viewer. */
export const AUDITOR_REALM = 'audit';

/**
 * The example app's auditor role: a request may read the audit trail when its `x-auditor-token`
 * header carries `AUDIT_HTTP_TOKEN`, or, from a browser (the audit viewer), when HTTP Basic
 * credentials carry it as the password (any user name). Without either, 401 with a Basic
 * challenge, so that a browser asks for it; with another value, or when no token is configured,
 * 403. A real app would check a role its authentication put on the request.
 */
@Injectable()
export class AuditReaderGuard implements CanActivate {
  private readonly expected: Buffer | undefined;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.expected = config.auditHttpToken === undefined ? undefined : digest(config.auditHttpToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const headers = http.getRequest<{ headers: Record<string, string | string[] | undefined> }>().headers;
    const sent = headers[AUDITOR_TOKEN_HEADER] ?? basicPassword(headers.authorization);
    if (this.expected === undefined) throw new ForbiddenException('Reading the audit trail is off: AUDIT_HTTP_TOKEN is not set');
    if (typeof sent !== 'string' || sent === '') {
      challenge(http.getResponse());
      throw new UnauthorizedException(`Send the auditor token in the ${AUDITOR_TOKEN_HEADER} header, or as the password of HTTP Basic`);
    }
    // Digests of equal length, compared in constant time: the answer says nothing about the token.
    if (!timingSafeEqual(digest(sent), this.expected)) throw new ForbiddenException('This token may not read the audit trail');
    return true;
  }
}

function basicPassword(authorization: string | string[] | undefined): string | undefined {
  const match = typeof authorization === 'string' ? /^Basic ([A-Za-z0-9+/=]+)$/i.exec(authorization.trim()) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}

/** Asks a browser for credentials (Express `setHeader`, Fastify `header`). */
function challenge(response: { setHeader?: (n: string, v: string) => void; header?: (n: string, v: string) => void }): void {
  const value = `Basic realm="${AUDITOR_REALM}", charset="UTF-8"`;
  if (typeof response.setHeader === 'function') response.setHeader('WWW-Authenticate', value);
  else response.header?.('WWW-Authenticate', value);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
