import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { eventually, startExampleApp } from '../../test/support/app';
import { launchChromium } from '../../test/support/browser';
import { binariesRoot } from '../../test/support/leftovers';
import { TestPostgres } from '../../test/support/postgres';

const TOKEN = 'screenshot-auditor-token';
const ROOT = root(__dirname);
const DOCS = join(ROOT, 'docs');

/**
 * `npm run viewer:screenshots`: the example app on an embedded PostgreSQL with a day of made-up
 * traffic and one short outage, photographed by headless Chromium: docs/viewer-timeline.png and
 * docs/viewer-status.png. Prints the page's size, gzipped.
 */
async function main(): Promise<void> {
  const [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
  await auditDb.createDatabase('audit');
  const app = await startExampleApp({
    DATABASE_URL: appDb.url(),
    AUDIT_DATABASE_URL: auditDb.url('audit'),
    AUDIT_HTTP_TOKEN: TOKEN,
    AUDIT_RETRY_BACKOFF_MS: '200',
    AUDIT_RETRY_BACKOFF_MAX_MS: '400',
    AUDIT_WRITE_TIMEOUT_MS: '1500',
    AUDIT_INTEGRITY_ENABLED: 'true',
    AUDIT_INTEGRITY_INTERVAL_MS: '500',
    SENTRY_DSN: undefined,
    AUDIT_MODE: undefined,
    AUDIT_SPOOL_DIR: undefined,
  });
  const browser = await launchChromium();
  try {
    const server = app.getHttpServer();
    await eventually(
      async () => (await request(server).get('/audit?limit=1').set('x-auditor-token', TOKEN)).status === 200,
      30_000,
      'the audit table',
    );
    const created = await request(server)
      .post('/ndas')
      .set('x-user-id', 'alice@acme.test')
      .send({ title: 'Alpha', counterparty: 'Acme Corp' });
    const id = (created.body as { id: string }).id;
    await request(server).patch(`/ndas/${id}`).set('x-user-id', 'bob@acme.test').send({ title: 'Beta', counterparty: 'Acme Holdings' });
    await request(server).patch(`/ndas/${id}`).set('x-user-id', 'bob@acme.test').send({ title: 'Gamma' });
    // A day of traffic, busier in working hours.
    await auditDb.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome)
       SELECT gen_random_uuid(), now() - (h || ' hours')::interval - (k || ' seconds')::interval, 'nda_viewed', 'NDA', k::text, 'carol@acme.test', 'success'
       FROM generate_series(1, 23) AS h, generate_series(1, 400) AS k
       WHERE k <= 40 + 300 * (1 + sin(h / 3.8)) / 2`,
      [],
      'audit',
    );
    // A short outage, for the state chart.
    await auditDb.kill();
    await request(server).post('/ndas').set('x-user-id', 'dave@acme.test').send({ title: 'During the outage', counterparty: 'Initech' });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await auditDb.restart();
    await eventually(async () => (await request(server).get('/health')).status === 200, 30_000, 'recovery');
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const port = (server.address() as AddressInfo).port;
    const context = await browser.newContext({
      baseURL: `http://127.0.0.1:${port}`,
      httpCredentials: { username: 'auditor', password: TOKEN },
      viewport: { width: 1280, height: 800 },
    });
    const page = await context.newPage();
    await mkdir(DOCS, { recursive: true });
    await page.goto(`/audit/ui?view=entity&type=NDA&id=${id}`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.screenshot({ path: join(DOCS, 'viewer-timeline.png'), fullPage: true });
    await page.goto('/audit/ui?view=status');
    await page.waitForSelector('body[data-ready="true"]');
    await page.screenshot({ path: join(DOCS, 'viewer-status.png'), fullPage: true });
    if (process.env.VIEWER_SCREENSHOTS_NARROW) {
      await page.setViewportSize({ width: 390, height: 844 });
      for (const [name, query] of [
        ['list', ''],
        ['timeline', `?view=entity&type=NDA&id=${id}`],
        ['status', '?view=status'],
      ]) {
        await page.goto(`/audit/ui${query}`);
        await page.waitForSelector('body[data-ready="true"]');
        await page.screenshot({ path: join(process.env.VIEWER_SCREENSHOTS_NARROW, `viewer-${name}-390.png`) });
      }
    }
    await context.close();
    console.log(`wrote docs/viewer-timeline.png and docs/viewer-status.png; the viewer's files weigh ${await assetsGzipped()} KB gzipped`);
  } finally {
    await browser.close();
    await app.close();
    await Promise.all([appDb.stop(), auditDb.stop()]);
    await rm(binariesRoot(), { recursive: true, force: true });
  }
}

/** The checkout: the first folder above `dir` with a package.json. */
function root(dir: string): string {
  return existsSync(join(dir, 'package.json')) ? dir : root(dirname(dir));
}

async function assetsGzipped(): Promise<string> {
  const dir = join(ROOT, 'src', 'audit', 'viewer', 'assets');
  let bytes = 0;
  for (const name of await readdir(dir)) bytes += gzipSync(await readFile(join(dir, name)), { level: 9 }).length;
  return (bytes / 1024).toFixed(1);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
