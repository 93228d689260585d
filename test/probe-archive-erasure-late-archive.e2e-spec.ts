import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { runErase } from '../src/audit/privacy/erase-command';
import { eventually } from './support/app';
import { sealingKeys, verify } from './support/integrity';
import { monthsAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// Promise (docs/PRIVACY.md, "Erasure inside archives"): "`audit-erase --archive-dir DIR` reaches
// them, the one copy outside the database an erasure reaches"; "Every archive pair in `DIR` … is
// read first, before anything is erased"; docs/LIFECYCLE.md, "Archives and erasure": "after the
// database erasure commits, every archive pair in `DIR` that holds rows of the subject is written
// again with those rows erased".
//
// Break: audit-erase reads DIR (its plan) before it opens its database transaction, and rewrites
// only the archives of that plan. A month that `audit-retention --archive-dir DIR` archives and
// removes in between (a scheduled retention run; the plan reads every rows file in DIR, minutes
// for years of archives) lands in DIR with the subject's rows as they were, and is gone from the
// database before the erasure runs: neither the database erasure nor the archive rewrite reaches
// those rows. The run exits 0 and says `0 rows erased in 0 archives`; the archive verifies clean
// (the offline check judges erased rows only) and nothing ever names the rows left.
// Here the window is held open deterministically: audit-erase reaches the database through a
// proxy that holds its connection until retention has finished.
// Observed: exit 0 for both commands; audit-erase says `archives in DIR: 0 rows erased in 0
// archives of 0`; the removed month's archive in DIR holds the erased user's rows ("u-1", its ip
// and personal values) and `audit-verify --archive` (public key, entry key) finds no anomaly.
// Severity: high (an erased subject's personal data survives in the archive directory the
// operator named, with a success status and no later check that finds it).
// Fix guess: take the erasure's database transaction first (or re-read DIR after the database
// erasure commits and before the archives are rewritten, counting what the entry records from
// that second read), and make audit-archive / retention's archive writer hold the same per-archive
// lock (or a DIR-wide one) so an archive cannot appear between the plan and the rewrite; or have
// retention refuse to archive a month while an erasure is in progress.
describe('probe: an archive written into DIR while an erasure runs is erased too', () => {
  const database = 'probelatearchive';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const month = monthsAgo(2).month;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  let archives: string;
  let gate: Server;
  const held: Socket[] = [];
  const piped: Socket[] = [];

  const at = (k: number, hour: number) => new Date(Date.parse(monthsAgo(k).start) + hour * 3_600_000);
  const log = (k: number, hour: number, userId: string) =>
    app.get(AuditService).log({
      action: 'nda_created',
      entityType: 'Nda',
      entityId: `nda-${k}-${hour}`,
      userId,
      ip: '10.0.0.1',
      occurredAt: at(k, hour),
    });
  /** Lets the connections the gate holds through to PostgreSQL. */
  const release = () => {
    for (const client of held.splice(0)) {
      const upstream = createConnection({ port: db.port, host: '127.0.0.1' });
      upstream.on('error', () => undefined);
      piped.push(client, upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    }
  };

  beforeAll(async () => {
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 3, keys, entryKey));
    archives = join(dir, 'archives');
    mkdirSync(archives, { mode: 0o700 });
    await log(2, 1, 'u-1');
    await log(2, 2, 'u-2');
    await log(1, 1, 'u-1');
    await app.get(AuditSealer).sealNow();
    gate = createServer((client) => {
      client.on('error', () => undefined);
      client.pause();
      held.push(client);
    });
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
  }, 180_000);

  afterAll(async () => {
    for (const socket of [...held, ...piped]) socket.destroy();
    await new Promise<void>((resolve) => (gate ? gate.close(() => resolve()) : resolve()));
    await stopArchiveTrail({ app, db, stderr, dir });
  });

  it("a month archived into DIR and removed between audit-erase's reading of DIR and its erasure keeps none of the subject's rows", async () => {
    const port = (gate.address() as { port: number }).port;
    const url = db.url(database).replace(`:${db.port}/`, `:${port}/`);
    const eraseOut: string[] = [];
    const erasing = runErase(
      ['--url', url, '--by', 'dpo', '--archive-dir', archives, '--user', 'u-1', '--timeout-ms', '120000'],
      { AUDIT_INTEGRITY_ENTRY_KEY: entryKey },
      { out: (l) => eraseOut.push(l), err: (l) => eraseOut.push(l) },
    );
    // audit-erase has read DIR and now waits for its database connection.
    await eventually(() => held.length > 0, 30_000, 'audit-erase connecting');
    const retentionOut: string[] = [];
    const retained = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '1', '--archive-dir', archives],
      {},
      {
        out: (l) => retentionOut.push(l),
        err: (l) => (l.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? undefined : retentionOut.push(l)),
      },
    );
    expect({ retained, removed: retentionOut.filter((l) => l.startsWith(`RETIRED ${month}`)).length }).toEqual({ retained: 0, removed: 1 });
    release();
    const erased = await erasing;
    expect(erased).toBe(0);
    // The promise: after the erasure, no archive pair in DIR holds the erased user's rows.
    const rowsFiles = readdirSync(archives).filter((name) => name.endsWith('.ndjson.gz'));
    const holding = rowsFiles.filter((name) =>
      gunzipSync(readFileSync(join(archives, name)))
        .toString('utf8')
        .includes('"u-1"'),
    );
    const checked = await verify(
      '',
      '--archive',
      join(archives, `audit-${month}.seals.json`),
      '--public-key',
      join(dir, 'seal.pub'),
      '--entry-key',
      entryKey,
    );
    expect({
      holding,
      said: eraseOut.filter((l) => l.startsWith('audit-erase: archives')),
      verified: { code: checked.code, anomalies: checked.anomalies },
    }).toEqual({
      holding: [],
      said: [`audit-erase: archives in ${archives}: 0 rows erased in 0 archives of 0`],
      verified: { code: 0, anomalies: [] },
    });
  }, 180_000);
});
