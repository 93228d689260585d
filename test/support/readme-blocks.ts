import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** One TypeScript example of the README: where it starts, the file it is, its code. */
export interface ReadmeBlock {
  line: number;
  /** The path its first line names (`// src/app.module.ts`), else `example-<line>.ts`. */
  path: string;
  code: string;
}

/**
 * The README's ```ts blocks, dedented to their fence.
 *
 * @example
 * readmeBlocks().find((b) => b.path === 'src/app.module.ts')?.code;
 */
export function readmeBlocks(): ReadmeBlock[] {
  const lines = readFileSync(join(resolve(__dirname, '../..'), 'README.md'), 'utf8').split('\n');
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
