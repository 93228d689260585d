import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

/**
 * The anchor GitHub gives a heading: its text as rendered (no backticks, emphasis or link
 * targets), lower-cased, with every character that is not a letter, digit, space, `-` or `_`
 * removed and each space made a `-`.
 *
 * @example
 * githubSlug('Integrity: sealed and verifiable'); // 'integrity-sealed-and-verifiable'
 * githubSlug('Before/after diffs'); // 'beforeafter-diffs'
 */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .replace(/<[^>]+>/g, '');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
    .replace(/ /g, '-');
}

/** `text` without its fenced code blocks (kept as empty lines, so that line numbers hold). */
function withoutFences(text: string): string[] {
  let fence: string | null = null;
  return text.split('\n').map((line) => {
    const mark = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === null && mark) {
      fence = mark;
      return '';
    }
    if (fence !== null) {
      if (mark && mark[0] === fence[0] && mark.length >= fence.length) fence = null;
      return '';
    }
    return line;
  });
}

/**
 * The anchors of a Markdown text's headings, as GitHub makes them: a repeated one gets `-1`,
 * `-2`, ….
 *
 * @example
 * headingAnchors('# A\n## A\n'); // Set { 'a', 'a-1' }
 */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutFences(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const slug = githubSlug(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** A link of a Markdown file that leads nowhere. */
export interface BrokenLink {
  /** `file:line`. */
  at: string;
  target: string;
  reason: string;
}

/**
 * The relative links and anchors of `files` (paths from `root`) that do not resolve: the file or
 * directory must exist, and a `#anchor` must be a heading of the Markdown file it points into.
 * External links (`https:`, `mailto:`) are not followed. Code spans and fenced blocks are skipped.
 *
 * @example
 * brokenLinks('/repo', ['README.md', 'docs/GUIDE.md']); // [] when every link resolves
 */
export function brokenLinks(root: string, files: string[], read = (path: string) => readFileSync(path, 'utf8')): BrokenLink[] {
  const broken: BrokenLink[] = [];
  const anchorsOf = new Map<string, Set<string>>();
  const anchors = (path: string) => {
    if (!anchorsOf.has(path)) anchorsOf.set(path, headingAnchors(read(path)));
    return anchorsOf.get(path)!;
  };
  const exists = (path: string) => {
    try {
      return existsSync(path) || read(path) !== undefined;
    } catch {
      return false;
    }
  };
  for (const file of files) {
    const lines = withoutFences(read(join(root, file)));
    lines.forEach((raw, index) => {
      const line = raw.replace(/`[^`]*`/g, '');
      for (const match of line.matchAll(/!?\[(?:[^\]]|\][^(])*?\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
        const target = match[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        const at = `${file}:${index + 1}`;
        const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
        const path = pathPart === '' ? join(root, file) : normalize(join(root, dirname(file), decodeURI(pathPart)));
        if (!path.startsWith(root) || !exists(path)) {
          broken.push({ at, target, reason: 'no such file' });
          continue;
        }
        if (anchor === undefined) continue;
        if (!path.endsWith('.md') || (existsSync(path) && statSync(path).isDirectory())) {
          broken.push({ at, target, reason: 'an anchor into a file that is not Markdown' });
        } else if (!anchors(path).has(decodeURIComponent(anchor))) {
          broken.push({ at, target, reason: 'no such heading' });
        }
      }
    });
  }
  return broken;
}
