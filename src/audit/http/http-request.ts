import { type ExecutionContext } from '@nestjs/common';
import { ROUTE_ARGS_METADATA, RESPONSE_PASSTHROUGH_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';

/** The parts of an HTTP request the module reads (Express and Fastify both provide them). */
export interface HttpRequest {
  method: string;
  ip?: string;
  url?: string;
  /** Express: the matched route. */
  route?: { path?: string };
  /** Fastify: the matched route. */
  routeOptions?: { url?: string };
  params?: Record<string, unknown>;
  body?: unknown;
  headers: Record<string, string | string[] | undefined>;
  socket?: { remoteAddress?: string };
  /** Fastify: Node's own request. */
  raw?: object;
}

/** Node's response, as Express gives it and as Fastify's reply holds it in `raw`. */
export interface RawResponse {
  statusCode: number;
  writableFinished: boolean;
  /** `end()` was called (the connection may have closed before it was finished). */
  writableEnded: boolean;
  once(event: 'finish' | 'close', listener: () => void): unknown;
  end(...args: unknown[]): unknown;
  destroy(error?: Error): unknown;
}

/**
 * The route a request matched, as its pattern (`/ndas/:id`); without one, the path without its
 * query string, which may carry secrets.
 *
 * @example
 * routeOf({ method: 'POST', url: '/items/7?token=x', headers: {} }); // '/items/7'
 */
export function routeOf(request: HttpRequest): string | undefined {
  return request.route?.path ?? request.routeOptions?.url ?? request.url?.split('?')[0];
}

/**
 * Node's response behind an Express response or a Fastify reply.
 *
 * @example
 * rawResponseOf(context).once('finish', () => record(response.statusCode));
 */
export function rawResponseOf(context: ExecutionContext): RawResponse {
  const response = context.getArgByIndex<RawResponse & { raw?: RawResponse }>(1);
  return response.raw ?? response;
}

/**
 * The request of an HTTP context: what `switchToHttp().getRequest()` returns, read without
 * `switchToHttp()`, which gives the context three new closures on every call.
 *
 * @example
 * const request = requestOf(context); // context.getType() === 'http'
 */
export function requestOf(context: ExecutionContext): HttpRequest {
  return context.getArgByIndex<HttpRequest>(0);
}

/**
 * True when the handler sends the response itself (`@Res()` or `@Next()` without passthrough):
 * only the response then tells its status.
 *
 * @example
 * if (handlesResponse(context)) waitForTheResponse();
 */
export function handlesResponse(context: ExecutionContext): boolean {
  const host = context.getClass();
  const name = context.getHandler().name;
  const params = (Reflect.getMetadata(ROUTE_ARGS_METADATA, host, name) ?? {}) as Record<string, unknown>;
  const sends = Object.keys(params).some((key) => {
    const type = Number(key.split(':')[0]);
    return type === Number(RouteParamtypes.RESPONSE) || type === Number(RouteParamtypes.NEXT);
  });
  return sends && !Reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, host, name);
}

/**
 * One header as a string (several values joined).
 *
 * @example
 * header(request, 'x-request-id'); // 'req-42'
 */
export function header(request: HttpRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
