import { type INestApplication } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { type AddressInfo } from 'node:net';
import { type Server } from 'node:http';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import request from 'supertest';
import { eventually, startExampleApp } from './support/app';
import { type DomNode, launchChromium, listRows, openViewer, type PageGlobals, waitReady } from './support/browser';
import { TestPostgres } from './support/postgres';
import { startQueryApp } from './support/query-app';

const TOKEN = 'viewer-e2e-auditor-token';
const ENV = {
  AUDIT_MODE: undefined,
  AUDIT_SPOOL_DIR: undefined,
  AUDIT_HTTP: undefined,
  SENTRY_DSN: undefined,
  AUDIT_RETRY_BACKOFF_MS: '100',
  AUDIT_RETRY_BACKOFF_MAX_MS: '200',
  AUDIT_WRITE_TIMEOUT_MS: '1500',
  AUDIT_INTEGRITY_ENABLED: 'true',
  AUDIT_INTEGRITY_INTERVAL_MS: '500',
};

// The audit viewer of the example app in headless Chromium: NDA data in one PostgreSQL, the trail
// in another (so that killing it leaves the app serving), the auditor token sent by the browser
// as the password of HTTP Basic, as a person would type it into the browser's prompt.
describe('the audit viewer in a real browser', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let app: INestApplication<Server>;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let origin: string;
  const ids: Record<'a' | 'b', string> = { a: '', b: '' };

  const server = () => app.getHttpServer();
  const api = (path: string) => request(server()).get(path).set('x-auditor-token', TOKEN);
  const auditRows = async (query: string) => ((await api(`/audit?${query}`).expect(200)).body as { items: unknown[] }).items;

  beforeAll(async () => {
    [appDb, auditDb, browser] = await Promise.all([TestPostgres.start(), TestPostgres.start(), launchChromium()]);
    await auditDb.createDatabase('audit');
    app = await startExampleApp({ ...ENV, DATABASE_URL: appDb.url(), AUDIT_DATABASE_URL: auditDb.url('audit'), AUDIT_HTTP_TOKEN: TOKEN });
    origin = `http://127.0.0.1:${(server().address() as AddressInfo).port}`;
    await eventually(async () => (await request(server()).get('/health')).status === 200, 30_000, 'a healthy audit database');

    // alice creates A (Alpha); bob renames it Beta, then Gamma; carol creates and deletes B; dave fails.
    const created = await request(server())
      .post('/ndas')
      .set('x-user-id', 'alice')
      .send({ title: 'Alpha', counterparty: 'Acme' })
      .expect(201);
    ids.a = (created.body as { id: string }).id;
    await request(server()).patch(`/ndas/${ids.a}`).set('x-user-id', 'bob').send({ title: 'Beta' }).expect(200);
    await request(server()).patch(`/ndas/${ids.a}`).set('x-user-id', 'bob').send({ title: 'Gamma' }).expect(200);
    const other = await request(server())
      .post('/ndas')
      .set('x-user-id', 'carol')
      .send({ title: 'Other', counterparty: 'Initech' })
      .expect(201);
    ids.b = (other.body as { id: string }).id;
    await request(server()).delete(`/ndas/${ids.b}`).set('x-user-id', 'carol').expect(204);
    await request(server()).post('/ndas').set('x-user-id', 'dave').send({ title: '' }).expect(400);
    await eventually(async () => (await auditRows('limit=500')).length === 6, 10_000, 'six audit rows');
  }, 90_000);

  beforeEach(async () => {
    context = await browser.newContext({
      baseURL: origin,
      httpCredentials: { username: 'auditor', password: TOKEN },
      acceptDownloads: true,
    });
    page = await context.newPage();
  });

  afterEach(async () => {
    await context?.close();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
  }, 30_000);

  it('serves the page, its files and its data only through the guard, with a strict CSP', async () => {
    for (const path of ['/audit/ui', '/audit/ui/viewer.js', '/audit/viewer/status', '/audit/viewer/volume', '/audit/viewer/rows']) {
      const refused = await request(server()).get(path).expect(401);
      expect(refused.headers['www-authenticate']).toBe('Basic realm="audit", charset="UTF-8"');
      expect(refused.text).not.toMatch(/alice|nda_|<html|import /);
      await request(server()).get(path).set('x-auditor-token', `${TOKEN}-not`).expect(403);
    }
    const basic = `Basic ${Buffer.from(`anyone:${TOKEN}`).toString('base64')}`;
    const html = await request(server()).get('/audit/ui').set('authorization', basic).expect(200);
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = html.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(html.headers['x-content-type-options']).toBe('nosniff');
    // No inline script: each <script> names a file.
    expect(html.text.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="viewer.js">']);
    const js = await request(server()).get('/audit/ui/viewer.js').set('authorization', basic).expect(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['content-security-policy']).toBe(csp);
    await request(server()).get('/audit/ui/..%2F..%2Fpackage.json').set('authorization', basic).expect(404);

    // A browser with another token gets nothing of the trail.
    const stranger = await browser.newContext({ baseURL: origin, httpCredentials: { username: 'auditor', password: 'guessed' } });
    const response = await (await stranger.newPage()).goto('/audit/ui');
    expect(response?.status()).toBe(403);
    expect(await response?.text()).not.toMatch(/alice|nda_|<script/);
    await stranger.close();
  });

  it('is off unless asked for', async () => {
    const plain = await startQueryApp(auditDb.url('audit'));
    try {
      await request(plain.getHttpServer()).get('/audit').set('x-auditor', 'yes').expect(200);
      await request(plain.getHttpServer()).get('/audit/ui').set('x-auditor', 'yes').expect(404);
      await request(plain.getHttpServer()).get('/audit/viewer/status').set('x-auditor', 'yes').expect(404);
    } finally {
      await plain.close();
    }
  });

  it('finds created, patched and deleted NDAs through the filters, kept in a URL that can be shared', async () => {
    await openViewer(page);
    expect(await listRows(page)).toHaveLength(6);

    await page.getByLabel('User').fill('bob');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await waitReady(page);
    expect((await listRows(page)).map((r) => [r[1], r[2], r[3], r[4]])).toEqual([
      ['bob', 'nda_updated', `NDA ${ids.a}`, 'success'],
      ['bob', 'nda_updated', `NDA ${ids.a}`, 'success'],
    ]);
    expect(new URL(page.url()).searchParams.get('userId')).toBe('bob');

    // The same URL in a new tab shows the same view.
    const shared = await context.newPage();
    await shared.goto(page.url());
    await waitReady(shared);
    expect(await listRows(shared)).toEqual(await listRows(page));
    expect(await shared.getByLabel('User').inputValue()).toBe('bob');

    await openViewer(page, `?view=list&action=nda_deleted&entityId=${ids.b}`);
    expect((await listRows(page)).map((r) => [r[1], r[2], r[3]])).toEqual([['carol', 'nda_deleted', `NDA ${ids.b}`]]);

    await openViewer(page);
    await page.getByLabel('Outcome').selectOption('failure');
    await page.getByLabel('Entity type').fill('NDA');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await waitReady(page);
    expect((await listRows(page)).map((r) => [r[1], r[2], r[4]])).toEqual([['dave', 'nda_created', 'failure']]);

    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    await openViewer(page, `?view=list&userId=alice&from=${today}&to=${tomorrow}`);
    expect((await listRows(page)).map((r) => r[2])).toEqual(['nda_created']);
    await openViewer(page, `?view=list&userId=alice&from=${tomorrow}`);
    expect(await listRows(page)).toEqual([]);
    expect(await page.locator('#count').textContent()).toBe('No rows match.');
  });

  it("shows an NDA's timeline newest first, Beta → Gamma, with unknown and redacted values named", async () => {
    // A row whose change TypeORM could not see before (update() by criteria), a redacted value, and
    // the text `[Erased]` in a row no erasure took (shown as the text it is).
    await auditDb.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, changes)
       VALUES (gen_random_uuid(), now() - interval '1 hour', 'nda_bulk_fix', 'NDA', $1, 'ops', 'success', $2)`,
      [
        ids.a,
        JSON.stringify({
          entities: [
            { type: 'NDA', id: ids.a, op: 'update', before: 'unknown', after: { title: 'Delta', secret: '[REDACTED]' } },
            { type: 'NDA', id: ids.a, op: 'update', fields: { note: ['[Erased]', ''] } },
          ],
        }),
      ],
      'audit',
    );
    await openViewer(page, `?view=list&entityId=${ids.a}&action=nda_created`);
    // By keyboard: the entity's link, then Enter.
    await page.locator('#trail tbody a').first().focus();
    await page.keyboard.press('Enter');
    await waitReady(page);
    expect(new URL(page.url()).searchParams.get('view')).toBe('entity');

    const events = page.locator('#timeline > li');
    expect(await events.locator('h3').allTextContents()).toEqual([
      expect.stringMatching(/^nda_updated by bob .* success$/),
      expect.stringMatching(/^nda_updated by bob .* success$/),
      expect.stringMatching(/^nda_created by alice .* success$/),
      expect.stringMatching(/^nda_bulk_fix by ops .* success$/),
    ]);
    const fieldRows = (n: number) =>
      events
        .nth(n)
        .locator('tbody tr')
        .evaluateAll((rows: DomNode[]) => rows.map((row) => Array.from(row.children, (c) => c.textContent)));
    expect(await fieldRows(0)).toEqual([['title', 'Beta', '→ Gamma']]);
    expect(await fieldRows(1)).toEqual([['title', 'Alpha', '→ Beta']]);
    expect(await fieldRows(2)).toEqual(expect.arrayContaining([['title', 'null', '→ Alpha']]));
    expect(await fieldRows(3)).toEqual([
      ['title', 'unknown', '→ Delta'],
      ['secret', 'unknown', '→ redacted'],
      ['note', '[Erased]', '→ empty text'],
    ]);
    expect(await events.nth(2).locator('td.old .tag-null').count()).toBeGreaterThan(0);

    // One row in full, and back to where the keyboard was.
    const details = events.nth(0).getByRole('button', { name: 'Details' });
    await details.click();
    const panel = page.locator('#detail');
    await expect(panel.isVisible()).resolves.toBe(true);
    await eventually(async () => !(await panel.textContent())?.includes('checking…'), 10_000, 'the seal status');
    const text = (await panel.textContent()) ?? '';
    expect(text).toContain('Request id');
    expect(text).toContain('"Gamma"');
    expect(text).toMatch(/Seal(sealed by seal \d+, .* ago\), unchanged since|not sealed yet)/);
    await page.keyboard.press('Escape');
    expect(await panel.isVisible()).toBe(false);
    expect(await details.evaluate((button) => button === (globalThis as unknown as PageGlobals).document.activeElement)).toBe(true);
  });

  it('shows in the detail panel whether a row is sealed, and by which seal, or not sealed yet', async () => {
    type RowRead = { items: { id: string; seal?: { state: string; seq?: number } }[] };
    const created = (await auditRows(`entityId=${ids.a}&action=nda_created`)) as { id: string }[];
    const sealOf = async (id: string) => ((await api(`/audit/rows/${id}`).expect(200)).body as RowRead).items[0].seal;
    await eventually(async () => (await sealOf(created[0].id))?.state === 'sealed', 15_000, "alice's row sealed");
    const { seq } = (await sealOf(created[0].id)) as { seq: number };

    await openViewer(page, `?view=list&entityId=${ids.a}&action=nda_created`);
    await page.locator('#trail tbody button.detail').click();
    const seal = page.locator('#detail-seal');
    await page.waitForFunction(
      () => !(globalThis as unknown as PageGlobals).document.getElementById('detail-seal')?.textContent?.includes('checking'),
    );
    expect(await seal.textContent()).toMatch(
      new RegExp(`^sealed by seal ${seq}, \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC \\(.+ ago\\), unchanged since$`),
    );
    await page.keyboard.press('Escape');

    // A transaction held open on the audit database holds the sealing horizon back: a row logged now waits.
    const holder = await auditDb.connect('audit');
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_current_xact_id()');
      const late = await request(server())
        .post('/ndas')
        .set('x-user-id', 'frank')
        .send({ title: 'Late', counterparty: 'Acme' })
        .expect(201);
      const lateId = (late.body as { id: string }).id;
      await eventually(async () => (await auditRows(`entityId=${lateId}`)).length === 1, 10_000, "frank's audit row");
      await openViewer(page, `?view=list&entityId=${lateId}`);
      await page.locator('#trail tbody button.detail').click();
      await page.waitForFunction(
        () => !(globalThis as unknown as PageGlobals).document.getElementById('detail-seal')?.textContent?.includes('checking'),
      );
      expect(await seal.textContent()).toBe('not sealed yet');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
  });

  it("keeps the list a table for screen readers: rows, column headers and cells in Chromium's accessibility tree", async () => {
    await openViewer(page, `?view=list&entityId=${ids.a}`);
    const cdp = await context.newCDPSession(page);
    type AxNode = { role?: { value?: string }; name?: { value?: string }; ignored?: boolean };
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as unknown as { nodes: AxNode[] };
    const shown = nodes.filter((node) => !node.ignored);
    const named = (role: string) => shown.filter((node) => node.role?.value === role).map((node) => node.name?.value ?? '');
    expect(named('table')).toContain('Audit rows, newest first');
    expect(named('columnheader')).toEqual(['When', 'User', 'Action', 'Entity', 'Outcome', 'Row']);
    expect(named('row')).toHaveLength(1 + (await listRows(page)).length);
    expect(named('cell').length).toBe(6 * (await listRows(page)).length);
    await cdp.detach();
  });

  it('shows values erased from the trail ([ERASED]) as erased, inert, in the list, the timeline and the row in full', async () => {
    const entity = 'erased-nda-1';
    const erasure = '0193a0c4-0000-7000-8000-00000000e1a5';
    // An erased row (its `personal` column holds the erasure's marker, beside its commitments), and
    // a row whose user was logged as the text `[ERASED]`.
    await auditDb.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, changes, metadata, personal, commitments)
       VALUES (gen_random_uuid(), now(), 'nda_updated', 'NDA', $1, '[ERASED]', 'success', '[ERASED]', '[ERASED]', $2, $3, $4, $5),
              (gen_random_uuid(), now() - interval '1 minute', 'nda_created', 'NDA', $1, '[ERASED]', 'success', NULL, NULL, NULL, NULL, NULL, NULL)`,
      [
        entity,
        JSON.stringify({ entities: [{ type: 'NDA', id: entity, op: 'update', fields: { counterparty: ['[ERASED]', '[ERASED]'] } }] }),
        JSON.stringify({ email: '[ERASED]' }),
        JSON.stringify({ erased: erasure }),
        JSON.stringify(['user_id', 'ip', 'user_agent'].map((column) => [[column], 'c'.repeat(43)])),
      ],
      'audit',
    );
    await openViewer(page, `?view=list&entityId=${entity}`);
    expect((await listRows(page)).map((r) => r[1])).toEqual(['erased', '[ERASED]']);
    expect(await page.locator('#trail tbody td:nth-child(2) .tag-erased').count()).toBe(1);
    await page.locator('#trail tbody button.detail').first().click();
    const panel = page.locator('#detail');
    const field = (name: string) => panel.locator('dt', { hasText: new RegExp(`^${name}$`) }).locator('xpath=following-sibling::dd[1]');
    expect(await field('User').textContent()).toBe('erased');
    expect(await field('IP').textContent()).toBe('erased');
    expect(await field('User agent').textContent()).toBe('erased');
    expect(await field('Erased by').textContent()).toBe(`erasure ${erasure}`);
    expect(await panel.locator('pre.json').last().textContent()).toBe('{\n  "email": "[ERASED]"\n}');
    await page.keyboard.press('Escape');
    await page.locator('#trail tbody button.detail').last().click();
    expect(await field('User').textContent()).toBe('[ERASED]');
    expect(await panel.locator('dt', { hasText: /^Erased by$/ }).count()).toBe(0);
    await page.keyboard.press('Escape');
    await page.locator('#trail tbody a').first().click();
    await waitReady(page);
    expect(
      await page
        .locator('#timeline tbody tr')
        .evaluateAll((rows: DomNode[]) => rows.map((row) => Array.from(row.children, (c) => c.textContent))),
    ).toEqual([['counterparty', 'erased', '→ erased']]);
    expect(await page.locator('#timeline h3').allTextContents()).toEqual([
      expect.stringMatching(/^nda_updated by erased /),
      expect.stringMatching(/^nda_created by \[ERASED\] /),
    ]);
  });

  it("exports the current filter as NDJSON and CSV, rows equal to the API's", async () => {
    await openViewer(page, `?view=list&entityId=${ids.a}`);
    const rows = (await auditRows(`entityId=${ids.a}`)).length;
    expect(rows).toBeGreaterThanOrEqual(3);
    for (const format of ['ndjson', 'csv'] as const) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator(`#export-${format}`).click()]);
      const file = await readFile((await download.path()) as string, 'utf8');
      const fromApi = (await api(`/audit/export?entityId=${ids.a}&format=${format}`).expect(200)).text;
      expect(file).toBe(fromApi);
      expect(file.trim().split('\n').length).toBe(format === 'csv' ? rows + 1 : rows);
    }
  });

  it('shows the panel turn down when the audit database dies, then up again', async () => {
    await openViewer(page, '?view=status');
    const state = page.locator('#state-value');
    expect(await state.textContent()).toBe('up');
    expect(await page.locator('.chart .bar').count()).toBe(24);
    for (const name of ['pending', 'buffered', 'spooled', 'quarantined', 'dropped', 'last-seal', 'sealing-lag']) {
      expect(await page.locator(`dd[data-name="${name}"]`).textContent()).not.toBe('');
    }

    await auditDb.kill();
    try {
      await request(server()).post('/ndas').set('x-user-id', 'erin').send({ title: 'During', counterparty: 'Acme' }).expect(201);
      await page.waitForFunction(
        () => (globalThis as unknown as PageGlobals).document.getElementById('state-value')?.textContent === 'down',
        undefined,
        { timeout: 20_000 },
      );
      expect(Number(await page.locator('dd[data-name="buffered"]').textContent())).toBeGreaterThanOrEqual(1);
    } finally {
      await auditDb.restart();
    }
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).document.getElementById('state-value')?.textContent === 'up',
      undefined,
      { timeout: 30_000 },
    );
    await page.waitForSelector('.chart rect.state-down', { timeout: 10_000 });
    expect(await page.locator('.chart rect.state-down').count()).toBeGreaterThan(0);
  }, 90_000);

  it('renders hostile values inert and legible: no dialog, no script, no request off the origin', async () => {
    const huge = 'A'.repeat(61_440);
    await auditDb.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, user_agent, request_id, changes, metadata)
       VALUES (gen_random_uuid(), now(), $1, 'NDA', $2, $3, 'success', $4, $5, $6, $7)`,
      [
        '<script>window.__pwned=1</script>',
        'javascript:window.__pwned=1//',
        '<img src=x onerror="window.__pwned=1">',
        'abc\u202Egnp.exe',
        '"><svg onload=window.__pwned=1>',
        JSON.stringify({
          entities: [
            {
              type: 'NDA',
              id: 'javascript:window.__pwned=1//',
              op: 'update',
              fields: { title: ['<iframe src="http://127.0.0.2:9/"></iframe>', '<a href="javascript:alert(1)">x</a>'], body: [huge, 'y'] },
            },
          ],
        }),
        JSON.stringify({
          style: '<style>body{display:none}</style>',
          big: huge,
          rtl: '\u202Eevil',
          link: '<a href="http://127.0.0.2:9/x">go</a>',
        }),
      ],
      'audit',
    );
    const dialogs: string[] = [];
    const requests: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('request', (r) => requests.push(r.url()));
    await page.addInitScript(() => {
      const w = globalThis as unknown as PageGlobals;
      w.__violations = [];
      w.document.addEventListener('securitypolicyviolation', (e) => w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });

    await openViewer(page, '?view=list&entityType=NDA&action=' + encodeURIComponent('<script>window.__pwned=1</script>'));
    expect(await listRows(page)).toEqual([
      [
        expect.any(String),
        '<img src=x onerror="window.__pwned=1">',
        '<script>window.__pwned=1</script>',
        'NDA javascript:window.__pwned=1//',
        'success',
      ],
    ]);
    await page.locator('#trail tbody button.detail').click();
    const panel = page.locator('#detail');
    expect(await panel.textContent()).toContain('abcU+202Egnp.exe');
    expect(await panel.textContent()).toContain(huge);
    expect(await panel.textContent()).toContain('<style>body{display:none}</style>');
    await page.keyboard.press('Escape');

    await page.locator('#trail tbody a').click();
    await waitReady(page);
    const title = page.locator('#timeline tbody tr', { has: page.locator('th', { hasText: /^title$/ }) });
    expect(await title.textContent()).toBe('title<iframe src="http://127.0.0.2:9/"></iframe>→ <a href="javascript:alert(1)">x</a>');
    const body = page.locator('#timeline tbody tr', { has: page.locator('th', { hasText: /^body$/ }) });
    expect((await body.textContent())?.length).toBeLessThan(400);
    await body.getByRole('button', { name: 'show all 61,440 characters' }).click();
    expect(await body.textContent()).toContain(huge);
    // In a scrolling box and a monospace font: in a proportional one Chromium took 20 to 30 s to lay it out.
    expect(
      await body
        .locator('.text.long')
        .evaluate((node) => (globalThis as unknown as PageGlobals).getComputedStyle(node as DomNode).fontFamily),
    ).toMatch(/monospace/);

    const found = await page.evaluate(() => {
      const w = globalThis as unknown as PageGlobals;
      return {
        pwned: w.__pwned,
        violations: w.__violations,
        markup: w.document.querySelectorAll('img, iframe, style, object, embed, svg [onload], main script, [onerror]').length,
        links: Array.from(w.document.querySelectorAll('a[href]'), (a) => a.getAttribute('href') as string),
        display: w.getComputedStyle(w.document.body).display,
      };
    });
    expect(found.pwned).toBeUndefined();
    expect(found.violations).toEqual([]);
    expect(found.markup).toBe(0);
    expect(found.display).toBe('block');
    expect(found.links.filter((href) => !href.startsWith('?') && !href.startsWith('/audit/') && href !== '#main')).toEqual([]);
    expect(dialogs).toEqual([]);
    expect(requests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
  });

  it('reads well at 390 px wide: no horizontal scrolling of the page', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const query of ['', `?view=entity&type=NDA&id=${ids.a}`, '?view=status']) {
      await openViewer(page, query);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth)).toBeLessThanOrEqual(
        390,
      );
    }
  });
});
