import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';

/**
 * One file of the page, read once at start.
 *
 * @example
 * const asset: ViewerAsset = { body: Buffer.from('body {}'), type: 'text/css; charset=utf-8' };
 */
export interface ViewerAsset {
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
};

/**
 * Where the page's files are: beside this module when it runs from `src/` (tests), else in
 * `src/audit/viewer/assets/` of the first folder above it that has one (the published package
 * ships them there as they are, plain ES modules and CSS: `tsc` copies no such files to `dist/`).
 *
 * @example
 * readViewerAssets(viewerAssetsDir()).get('viewer.js')?.type; // 'text/javascript; charset=utf-8'
 */
export function viewerAssetsDir(from = __dirname): string {
  if (existsSync(join(from, 'assets', 'index.html'))) return join(from, 'assets');
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'src', 'audit', 'viewer', 'assets');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`The audit viewer's files are missing: no src/audit/viewer/assets above ${from}`);
  }
}

/**
 * Every servable file of `dir` by name: a fixed set, so that no request names a path on disk.
 *
 * @example
 * const assets = readViewerAssets(viewerAssetsDir());
 */
export function readViewerAssets(dir: string): Map<string, ViewerAsset> {
  const assets = new Map<string, ViewerAsset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type && /^[a-z0-9-]+\.[a-z]+$/.test(name)) assets.set(name, { body: readFileSync(join(dir, name)), type });
  }
  return assets;
}

/**
 * The page's HTML, its `<base>` set to the folder of the page as requested (so that it works under
 * any global prefix); the path is escaped, though only route characters reach here.
 *
 * @example
 * pageHtml(template, '/admin/audit/ui'); // …<base href="/admin/audit/ui/">…
 */
export function pageHtml(template: string, requestPath: string): string {
  const base = `${withoutTrailing(requestPath, '/')}/`;
  const escaped = base.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return template.replace('{{base}}', escaped);
}

/** `text` without the run of `char` it ends with, in one pass (a pattern anchored at the end is tried from each `char`). */
function withoutTrailing(text: string, char: string): string {
  let end = text.length;
  while (end > 0 && text[end - 1] === char) end -= 1;
  return text.slice(0, end);
}
