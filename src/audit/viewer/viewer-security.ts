import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';

/**
 * The page's Content-Security-Policy: its own scripts and styles only (no inline script, no
 * `eval`), calls to its own origin only, no framing, no plugins, forms and `<base>` kept home.
 *
 * @example
 * VIEWER_CSP.includes("frame-ancestors 'none'"); // true
 */
export const VIEWER_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/**
 * Headers on every response of the viewer: the CSP, no MIME sniffing, no framing, no referrer,
 * and the page never cached (it is only served behind the guard).
 *
 * @example
 * for (const [name, value] of Object.entries(VIEWER_HEADERS)) response.setHeader(name, value);
 */
export const VIEWER_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': VIEWER_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
});

/**
 * Puts {@link VIEWER_HEADERS} on every response of the viewer's routes (Express `setHeader`,
 * Fastify `header`), and lets every request through. It is the first of the viewer's guards, so
 * that the app's guard's refusal carries the headers too (an interceptor runs only after the
 * guards have let a request through).
 *
 * @example
 * UseGuards(ViewerHeadersGuard, AuditorsOnlyGuard)(ViewerController);
 */
@Injectable()
export class ViewerHeadersGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const response = context.switchToHttp().getResponse<{
      setHeader?: (name: string, value: string) => void;
      header?: (name: string, value: string) => void;
    }>();
    for (const [name, value] of Object.entries(VIEWER_HEADERS)) {
      if (typeof response.setHeader === 'function') response.setHeader(name, value);
      else response.header?.(name, value);
    }
    return true;
  }
}
