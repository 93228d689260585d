/**
 * The action recorded for a mutating handler without `@Audited()`: controller and method in
 * snake case, e.g. `NdasController.archiveAll` → `ndas.archive_all`.
 *
 * @example
 * deriveAction('NdasController', 'archiveAll'); // 'ndas.archive_all'
 */
export function deriveAction(controllerName: string, handlerName: string): string {
  const action = `${snake(controllerName.replace(/Controller$/, '')) || 'controller'}.${snake(handlerName) || 'handler'}`;
  return /^[a-z]/.test(action) ? action : `http.${action}`;
}

function snake(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
}
