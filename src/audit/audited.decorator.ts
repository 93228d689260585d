import { SetMetadata } from '@nestjs/common';
import { ACTION_PATTERN, AUDITED_METADATA } from './audit.constants';
import { AuditConfigError } from './audit.errors';

/**
 * Where the interceptor finds the audited entity's id.
 *
 * @example
 * const fromRoute: EntityIdSource = { param: 'id' };
 * const fromBody: EntityIdSource = ({ result }) => (result as { id: string }).id;
 */
export type EntityIdSource =
  /** A route parameter, e.g. `{ param: 'id' }` for `/ndas/:id`. */
  | { param: string }
  /** A field of the handler's return value (the response body), e.g. `{ result: 'id' }`. */
  | { result: string }
  /** Anything else: receives the request and the handler's result (undefined on failure). */
  | ((source: { request: unknown; result: unknown }) => unknown);

/**
 * Options of {@link Audited}: which entity the audited action touched.
 *
 * @example
 * const options: AuditedOptions = { entityType: 'NDA', entityId: { param: 'id' } };
 * const decorate = Audited('nda_updated', options);
 */
export interface AuditedOptions {
  /** The audited entity's type, e.g. `'NDA'`. Default: the controller name without `Controller`. */
  entityType?: string;
  /** Default: the `id` route parameter, else the `id` field of the result. */
  entityId?: EntityIdSource;
}

/** What `@Audited()` stores on the handler. */
export interface AuditedMetadata extends AuditedOptions {
  action: string;
}

/**
 * Names the action the interceptor records for this handler, and asks for its row whatever the
 * HTTP method: a GET or HEAD to an `@Audited` handler (a mutation reached by a link) is recorded
 * like a POST. The action is checked when the class is defined, so a bad name stops start-up with
 * an `AUDIT_INVALID_ACTION` error.
 *
 * @example
 * import { Body, Post } from '@nestjs/common';
 * import { randomUUID } from 'node:crypto';
 *
 * class NdasController {
 *   @Post()
 *   @Audited('nda_created', { entityType: 'NDA', entityId: { result: 'id' } })
 *   create(@Body() body: { title: string }) { return { id: randomUUID(), ...body }; }
 * }
 */
export function Audited(action: string, options: AuditedOptions = {}): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const where = `${(target as { constructor: { name: string } }).constructor.name}.${String(propertyKey)}`;
    if (typeof action !== 'string' || !ACTION_PATTERN.test(action)) throw AuditConfigError.invalidAction(action, where);
    validateEntityId(options.entityId, where);
    return SetMetadata<string, AuditedMetadata>(AUDITED_METADATA, { action, ...options })(target, propertyKey, descriptor);
  };
}

function validateEntityId(source: unknown, where: string): void {
  if (source === undefined || typeof source === 'function') return;
  const s = source as Record<string, unknown>;
  const ok = (typeof s.param === 'string' && !('result' in s)) || (typeof s.result === 'string' && !('param' in s));
  if (!ok) {
    throw AuditConfigError.invalidOption(`@Audited(entityId) on ${where}`, '{ param: string }, { result: string } or a function', source);
  }
}
