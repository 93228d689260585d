import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { gunzipSync } from 'node:zlib';
import { AUDIT_EVENTS, AuditSealer } from '../src/audit';
import { type ArchiveFiles, boundedArchiveFiles } from '../src/audit/lifecycle/archive-files';
import { writeArchive } from '../src/audit/lifecycle/archive-writer';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { runErase } from '../src/audit/privacy/erase-command';
import { eventually } from './support/app';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { verify } from './support/integrity';
import { monthsAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';

// An archive written into DIR while `audit-erase --archive-dir DIR` runs (docs/PRIVACY.md, "Erasure
// inside archives"; docs/LIFECYCLE.md, "Archives and erasure"): the eraser lists DIR again once its
// database erasure has committed, and the archive writer (`audit-archive`, retention's archiving)
// holds the archive's lock from before its snapshot until its files are in place. So an archive
// whose snapshot came before the erasure's commit is either in DIR when the eraser lists it
// (erased there, under an entry that counts its rows) or still being written (named, exit 1: run
// the same erasure again once it has ended); and retention keeps a month whose archive another run
// holds. The first case holds the window open deterministically: audit-erase reaches the database
// through a proxy that holds its connection until retention has archived and removed the month.
describe('an archive written into DIR while an erasure runs', () => {
  const database = 'archlatearchive';
  const trail = new ArchiveErasureTrail(database);
  const { entryKey, month, log, erase } = trail;
  let db: TestPostgres;
  let dir: string;
  let archives: string;
  let gate: Server;
  const held: Socket[] = [];
  const piped: Socket[] = [];

  const rowsFilesOf = () => readdirSync(archives).filter((name) => name.endsWith('.ndjson.gz'));
  const holds = (name: string, userId: string) =>
    gunzipSync(readFileSync(join(archives, name)))
      .toString('utf8')
      .includes(`"${userId}"`);
  /** Lets the connections the gate holds through to PostgreSQL. */
  let open = false;
  const release = () => {
    open = true;
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
    await trail.open();
    ({ db, dir, archives } = trail);
    mkdirSync(archives, { mode: 0o700 });
    await log(2, 1, 'u-1');
    await log(2, 2, 'u-2');
    await log(1, 1, 'u-1');
    await log(1, 2, 'u-3');
    await trail.app.get(AuditSealer).sealNow();
    gate = createServer((client) => {
      client.on('error', () => undefined);
      client.pause();
      held.push(client);
      if (open) release();
    });
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
  }, 180_000);

  afterAll(async () => {
    for (const socket of [...held, ...piped]) socket.destroy();
    await new Promise<void>((resolve) => (gate ? gate.close(() => resolve()) : resolve()));
    await trail.stop();
  });

  it('retention keeps a month whose archive another run holds, for that run', async () => {
    const lock = `${join(archives, `audit-${month}.seals.json`)}.lock`;
    writeFileSync(
      lock,
      `${JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), command: 'audit-erase' })}\n`,
    );
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '1', '--archive-dir', archives],
      {},
      { out: (l) => out.push(l), err: (l) => (l.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? undefined : out.push(l)) },
    );
    rmSync(lock);
    expect({ code, line: out.find((l) => l.includes(` ${month} (`)) ?? out.join('\n') }).toEqual({
      code: 0,
      line: expect.stringMatching(
        new RegExp(
          `^KEPT ${month} \\(.*\\): not archived for this run: AUDIT_ARCHIVE_LOCKED: .*\\.lock is held by audit-erase pid ${process.pid} .*; the month stays: run retention again once that run has ended$`,
        ),
      ),
    });
    // Nothing of that month was written, and it is still in the database: the next run archives and removes it (below).
    expect(readdirSync(archives).filter((name) => name.includes(month))).toEqual([]);
  }, 180_000);

  it("a month archived into DIR and removed between audit-erase's first reading of DIR and its erasure is erased there too", async () => {
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
    // The erasure found the archive written since it first read DIR, and erased it under an entry counting its rows.
    expect({ erased, out: eraseOut.filter((l) => l.startsWith('audit-erase: archive')) }).toEqual({
      erased: 0,
      out: [
        `audit-erase: archive ${month} in ${archives} was written since the archives were read: 2 rows of the subject there that this erasure did not count; erasing again`,
        `audit-erase: archives in ${archives}: 2 rows erased in 1 archives of ${rowsFilesOf().length}`,
      ],
    });
    const holding = rowsFilesOf().filter((name) => holds(name, 'u-1'));
    const checked = await verify(
      '',
      '--archive',
      join(archives, `audit-${month}.seals.json`),
      '--public-key',
      join(dir, 'seal.pub'),
      '--entry-key',
      entryKey,
    );
    expect({ holding, verified: { code: checked.code, anomalies: checked.anomalies } }).toEqual({
      holding: [],
      verified: { code: 0, anomalies: [] },
    });
  }, 180_000);

  it('an archive being written when the erasure lists DIR is named; the same erasure run again erases in it', async () => {
    const late = monthsAgo(1).month;
    const writer = new Client({ connectionString: db.url(database) });
    await writer.connect();
    let reached: () => void = () => undefined;
    const atRows = new Promise<void>((resolve) => (reached = resolve));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // audit-archive's writer, held once its snapshot is read and before its rows file is created.
    const held = (): ArchiveFiles => {
      const files = boundedArchiveFiles(archives, 30_000);
      return {
        ...files,
        create: async (path) => {
          if (path.endsWith('.ndjson.gz.partial')) {
            reached();
            await gate;
          }
          return files.create(path);
        },
      };
    };
    try {
      const writing = writeArchive(
        writer,
        { table: 'public.audit_log', month: late, out: archives, trail: `${database}/audit_log`, timeoutMs: 30_000 },
        held(),
      );
      await atRows;
      const first = await erase(['--user', 'u-3']);
      expect({ code: first.code, err: first.err }).toEqual({
        code: 1,
        err: [
          expect.stringMatching(
            new RegExp(
              `^archive ${late}: FAILED AUDIT_ARCHIVE_LOCKED: .*audit-${late}\\.seals\\.json\\.lock is held by audit-archive pid ${process.pid} .*: run the same erasure again once it has ended$`,
            ),
          ),
        ],
      });
      release();
      expect((await writing).written).toBe(true);
    } finally {
      release();
      await writer.end();
    }
    // The archive was written from a snapshot taken before the erasure: it holds the rows unerased until the erasure runs again.
    const name = `audit-${late}.ndjson.gz`;
    expect(holds(name, 'u-3')).toBe(true);
    const again = await erase(['--user', 'u-3']);
    expect({ code: again.code, err: again.err, holding: holds(name, 'u-3') }).toEqual({ code: 0, err: [], holding: false });
    expect(readdirSync(archives).filter((n) => n.endsWith('.lock') || n.endsWith('.partial'))).toEqual([]);
    const checked = await verify(
      '',
      '--archive',
      join(archives, `audit-${late}.seals.json`),
      '--public-key',
      join(dir, 'seal.pub'),
      '--entry-key',
      entryKey,
    );
    expect({ code: checked.code, anomalies: checked.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 180_000);
});
