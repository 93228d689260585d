import { resolve } from 'node:path';
import { brokenLinks, githubSlug, headingAnchors } from './support/markdown-links';
import { documentationFiles } from './support/readme-blocks';

const root = resolve(__dirname, '..');

// Every relative link of the README and docs/*.md leads to a file that exists, and every
// #anchor to a heading of the file it names, as GitHub makes heading anchors.
describe('the links of the documentation', () => {
  it('all resolve: files exist and anchors name headings', () => {
    const files = documentationFiles();
    expect(files).toEqual(expect.arrayContaining(['README.md', 'docs/GUIDE.md', 'docs/CONFIGURATION.md']));
    expect(brokenLinks(root, files)).toEqual([]);
  });

  it('makes anchors as GitHub does', () => {
    expect(githubSlug('Integrity: sealed and verifiable')).toBe('integrity-sealed-and-verifiable');
    expect(githubSlug('Before/after diffs')).toBe('beforeafter-diffs');
    expect(githubSlug('The audit viewer, in a browser')).toBe('the-audit-viewer-in-a-browser');
    expect(githubSlug('`audit-verify` and `--entry-key`')).toBe('audit-verify-and---entry-key');
    expect(githubSlug('stderr lines')).toBe('stderr-lines');
    expect(githubSlug('Über & [a link](x.md) snake_case')).toBe('über--a-link-snake_case');
    expect([...headingAnchors('# A\n## A\n```md\n# B\n```\n### A ##\n')]).toEqual(['a', 'a-1', 'a-2']);
  });

  it('reports a missing file, a missing heading and an anchor into a file that is not Markdown, and nothing in code', () => {
    const texts = new Map([
      [
        '/r/README.md',
        [
          '# Top',
          '[ok](docs/A.md#second-part) [self](#top) [web](https://example.com/#x)',
          '[gone](docs/NONE.md) [bad anchor](docs/A.md#nope)',
          '`[in code](NONE.md)`',
          '```',
          '[in a fence](NONE.md)',
          '```',
          '![picture](docs/a.png#x)',
        ].join('\n'),
      ],
      ['/r/docs/A.md', '# A\n## Second part\n[up](../README.md#top) [up wrong](../README.md#bottom)\n'],
      ['/r/docs/a.png', ''],
    ]);
    const read = (path: string) => {
      const text = texts.get(path);
      if (text === undefined) throw new Error(`ENOENT ${path}`);
      return text;
    };
    expect(brokenLinks('/r', ['README.md', 'docs/A.md'], read)).toEqual([
      { at: 'README.md:3', target: 'docs/NONE.md', reason: 'no such file' },
      { at: 'README.md:3', target: 'docs/A.md#nope', reason: 'no such heading' },
      { at: 'README.md:8', target: 'docs/a.png#x', reason: 'an anchor into a file that is not Markdown' },
      { at: 'docs/A.md:3', target: '../README.md#bottom', reason: 'no such heading' },
    ]);
  });
});
