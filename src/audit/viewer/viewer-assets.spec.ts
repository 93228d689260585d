import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pageHtml, readViewerAssets, viewerAssetsDir } from './viewer-assets';

/** The issue's budget for the page's files, gzipped. */
const BUDGET_BYTES = 100 * 1024;

describe('the audit viewer files', () => {
  const dir = viewerAssetsDir();
  const assets = readViewerAssets(dir);

  it('are the page, its style and its plain ES modules, and nothing else is servable', () => {
    expect([...assets.keys()].sort()).toEqual([
      'api.js',
      'charts.js',
      'detail.js',
      'dom.js',
      'index.html',
      'list.js',
      'status.js',
      'timeline.js',
      'values.js',
      'viewer.css',
      'viewer.js',
    ]);
  });

  it(`weigh at most ${BUDGET_BYTES / 1024} KB gzipped (docs/VIEWER.md states the measured size)`, () => {
    const gzipped = [...assets.values()].reduce((sum, asset) => sum + gzipSync(asset.body, { level: 9 }).length, 0);
    const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'VIEWER.md'), 'utf8');
    const stated = /viewer's files weigh (\d+(?:\.\d)?) KB gzipped/.exec(doc);
    expect(gzipped).toBeLessThanOrEqual(BUDGET_BYTES);
    expect(stated?.[1]).toBe((gzipped / 1024).toFixed(1));
  });

  it('never turn text into markup, evaluate text as code or fetch from another origin', () => {
    for (const [name, asset] of assets) {
      if (!name.endsWith('.js')) continue;
      const code = asset.body.toString('utf8');
      expect({
        name,
        found: code.match(
          /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(['"`]|https?:\/\/(?!www\.w3\.org\/2000\/svg)/g,
        ),
      }).toEqual({
        name,
        found: null,
      });
    }
    const html = assets.get('index.html')?.body.toString('utf8') ?? '';
    expect(html).not.toMatch(/<script>|\son[a-z]+=|style=|https?:\/\//);
  });

  it('set the page base from the path requested, escaped', () => {
    const template = '<base href="{{base}}" />';
    expect(pageHtml(template, '/admin/audit/ui')).toBe('<base href="/admin/audit/ui/" />');
    expect(pageHtml(template, '/audit/ui/')).toBe('<base href="/audit/ui/" />');
    expect(pageHtml(template, '/a"><script>/ui')).toBe('<base href="/a&#34;&#62;&#60;script&#62;/ui/" />');
  });
});
