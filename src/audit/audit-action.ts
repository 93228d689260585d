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
  const snaked = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_');
  return trimUnderscores(snaked);
}

/** `name` without leading and trailing `_`, in one pass (a pattern anchored at the end is tried from each `_`). */
function trimUnderscores(name: string): string {
  let start = 0;
  let end = name.length;
  while (start < end && name[start] === '_') start += 1;
  while (end > start && name[end - 1] === '_') end -= 1;
  return name.slice(start, end);
}
