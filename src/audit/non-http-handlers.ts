import { type DiscoveryService, type MetadataScanner } from '@nestjs/core';

/** Keys the GraphQL, microservices and WebSocket packages set on handlers (read without importing them). */
const GRAPHQL_RESOLVER_TYPE = 'graphql:resolver_type';
const RPC_PATTERN = 'microservices:pattern';
const WS_MESSAGE_MAPPING = 'websockets:message_mapping';

/**
 * Handlers the interceptor does not audit because they are not HTTP: GraphQL mutations, RPC
 * message and event handlers, WebSocket message handlers, as `Kind Class.method`.
 *
 * @example
 * nonHttpHandlers(discovery, scanner); // ['GraphQL mutation NdaResolver.createNda', 'RPC NdasController.onSigned']
 */
export function nonHttpHandlers(discovery: DiscoveryService, scanner: MetadataScanner): string[] {
  const found = new Set<string>();
  for (const wrapper of [...discovery.getControllers(), ...discovery.getProviders()]) {
    const { metatype, instance } = wrapper;
    if (!metatype || !instance || typeof instance !== 'object') continue;
    const prototype = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
    if (!prototype) continue;
    for (const name of scanner.getAllMethodNames(prototype)) {
      const kind = kindOf(prototype[name]);
      if (kind) found.add(`${kind} ${metatype.name}.${name}`);
    }
  }
  return [...found];
}

function kindOf(handler: unknown): string | undefined {
  if (typeof handler !== 'function') return undefined;
  if (Reflect.getMetadata(GRAPHQL_RESOLVER_TYPE, handler) === 'Mutation') return 'GraphQL mutation';
  if (Reflect.getMetadata(RPC_PATTERN, handler) !== undefined) return 'RPC';
  if (Reflect.getMetadata(WS_MESSAGE_MAPPING, handler)) return 'WebSocket';
  return undefined;
}
