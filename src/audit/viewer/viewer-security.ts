import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { type Observable } from 'rxjs';

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
 * Puts {@link VIEWER_HEADERS} on every response of the viewer's routes, errors included (Express
 * `setHeader`, Fastify `header`).
 *
 * @example
 * UseInterceptors(ViewerHeadersInterceptor)(ViewerController);
 */
@Injectable()
export class ViewerHeadersInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const response = context.switchToHttp().getResponse<{
      setHeader?: (name: string, value: string) => void;
      header?: (name: string, value: string) => void;
    }>();
    for (const [name, value] of Object.entries(VIEWER_HEADERS)) {
      if (typeof response.setHeader === 'function') response.setHeader(name, value);
      else response.header?.(name, value);
    }
    return next.handle();
  }
}
