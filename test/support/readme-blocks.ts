import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../..');

/** One TypeScript example of a Markdown file: where it starts, the file it is, its code. */
export interface ReadmeBlock {
  line: number;
  /** The path its first line names (`// src/app.module.ts`), else `example-<line>.ts`. */
  path: string;
  code: string;
}

/**
 * The ```ts blocks of a Markdown file of the project (the README unless named), dedented to
 * their fence.
 *
 * @example
 * readmeBlocks().find((b) => b.path === 'src/app.module.ts')?.code;
 * readmeBlocks('docs/GUIDE.md').length;
 */
export function readmeBlocks(file = 'README.md'): ReadmeBlock[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const open = /^(\s*)```ts\s*$/.exec(lines[i]);
    if (!open) continue;
    const body: string[] = [];
    const line = i + 1;
    while (i + 1 < lines.length && !/^\s*```\s*$/.test(lines[++i])) body.push(lines[i].slice(open[1].length));
    const code = body.join('\n');
    const path = /^\/\/ ((?:src|test)\/[\w./-]+\.ts)$/.exec(body[0] ?? '')?.[1] ?? `example-${line}.ts`;
    blocks.push({ line, path, code });
  }
  return blocks;
}

/**
 * The project's Markdown documentation: the README and every `docs/*.md`, as paths from the root.
 *
 * @example
 * documentationFiles(); // ['README.md', 'docs/CONFIGURATION.md', …]
 */
export function documentationFiles(): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}
