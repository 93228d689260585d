import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../src/embedded-database';
import { eventually } from './support/app';
import { type Build, buildProject } from './support/build';
import { TestPostgres } from './support/postgres';
import { leftoverDir } from './support/leftovers';

// The guarantee of sync mode with a spool, proven with a real process kill: every acknowledged
// mutation has a durable audit record, even when the app dies by SIGKILL during an outage.
describe('sync mode + spool survives SIGKILL of the app during an audit outage', () => {
  let build: Build;
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let spoolDir: string;
  let child: ChildProcess | undefined;
  let base = '';
  let output = '';

  const startApp = async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [join(build.dir, 'src/main.js')], {
      env: {
        ...build.env,
        PORT: String(port),
        DATABASE_URL: appDb.url(),
        AUDIT_DATABASE_URL: auditDb.url(),
        AUDIT_MODE: 'sync',
        AUDIT_SPOOL_DIR: spoolDir,
        AUDIT_WRITE_TIMEOUT_MS: '1000',
        AUDIT_RETRY_BACKOFF_MS: '100',
        AUDIT_RETRY_BACKOFF_MAX_MS: '200',
        SENTRY_DSN: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually(
      async () => (await fetch(`${base}/health`)).status === 200,
      30_000,
      `the app to serve (output: ${output.slice(-2000)})`,
    );
  };
  const kill = async () => {
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child?.kill('SIGKILL');
    await exited;
    child = undefined;
  };
  const createNda = async (n: number): Promise<string> => {
    const response = await fetch(`${base}/ndas`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ title: `NDA ${n}`, counterparty: 'Hooli' }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { id: string }).id;
  };

  beforeAll(async () => {
    [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    build = buildProject();
    spoolDir = join(await leftoverDir('audit-crash'), 'spool');
  }, 120_000);

  afterAll(async () => {
    if (child) await kill();
    await auditDb?.ensureRunning();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
    if (spoolDir) await rm(join(spoolDir, '..'), { recursive: true, force: true });
    if (build) await rm(build.dir, { recursive: true, force: true });
  }, 30_000);

  it('after restart with the database back, the table holds exactly the acknowledged requests', async () => {
    await startApp();
    const acknowledged: string[] = [];
    for (let n = 0; n < 5; n += 1) acknowledged.push(await createNda(n));

    await auditDb.kill();
    for (let n = 5; n < 25; n += 1) acknowledged.push(await createNda(n));
    await kill();

    await auditDb.restart();
    await startApp();
    await eventually(
      async () => {
        const health = (await (await fetch(`${base}/health`)).json()) as { details: { audit_db: { state: string; spooled: number } } };
        return health.details.audit_db.state === 'up' && health.details.audit_db.spooled === 0;
      },
      15_000,
      'the spool replay',
    );
    const rows = await auditDb.query<{ entity_id: string; n: string }>(
      `SELECT entity_id, count(*) AS n FROM audit_log WHERE action = 'nda_created' GROUP BY entity_id`,
    );
    expect(rows).toHaveLength(acknowledged.length);
    expect(new Set(rows.map((r) => r.entity_id))).toEqual(new Set(acknowledged));
    expect(rows.every((r) => r.n === '1')).toBe(true);
    await kill();
  }, 120_000);
});
