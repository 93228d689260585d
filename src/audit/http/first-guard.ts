import { type CanActivate } from '@nestjs/common';
import { type ModuleRef } from '@nestjs/core';

/** The part of Nest's container that holds the global guards, in the order they run. */
interface GuardsHolder {
  container?: { applicationConfig?: { getGlobalGuards?: () => unknown } };
}

/**
 * Puts `guard` before every global guard of the app, those bound with `APP_GUARD` in any module
 * and with `useGlobalGuards()` included. Call it while providers are being created (from a
 * factory): global guards are bound after that. Returns false when Nest's container did not
 * expose its guards, so the caller can say so.
 *
 * @example
 * // In the gate's provider factory, with ModuleRef injected:
 * if (!putFirstAmongGlobalGuards(moduleRef, gate)) logger.warn('refusals by global guards go unrecorded');
 */
export function putFirstAmongGlobalGuards(moduleRef: ModuleRef, guard: CanActivate): boolean {
  // Nest has no public way to order global guards; its ApplicationConfig keeps them in one array.
  const guards = (moduleRef as unknown as GuardsHolder).container?.applicationConfig?.getGlobalGuards?.();
  if (!Array.isArray(guards)) return false;
  guards.unshift(guard);
  return true;
}
