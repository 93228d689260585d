import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../../src/audit';
import { type ArchiveFiles } from '../../src/audit/lifecycle/archive-files';
import { runRetention } from '../../src/audit/lifecycle/retention-command';
import { runErase } from '../../src/audit/privacy/erase-command';
import { startArchiveTrail, stopArchiveTrail } from './archive-trail';
import { sealingKeys, verify, witnessText } from './integrity';
import { monthsAgo } from './past-months';
import { type TestPostgres } from './postgres';
import { type StderrCapture } from './stderr';

/**
 * What the archive erasure suites share: a sealed trail ({@link startArchiveTrail}) whose month two
 * months back is retired by `audit-retention --archive-dir` into `archives`, with the witness of its
 * seals and retention lines, and `audit-erase --archive-dir` and `audit-verify --archive` on it.
 * Make one per suite; `start` in `beforeAll`, `stop` in `afterAll`. Its helpers are bound: take them
 * apart (`const { log, erase } = trail`).
 */
export class ArchiveErasureTrail {
  readonly keys = sealingKeys();
  readonly entryKey = `k1:${randomBytes(32).toString('base64')}`;
  /** The month retired into the archive. */
  readonly month = monthsAgo(2).month;
  db!: TestPostgres;
  app!: INestApplication;
  stderr!: StderrCapture;
  /** The suite's temporary directory (keys, witness, archives and their copies). */
  dir!: string;
  /** The archive directory retention wrote the month's pair into. */
  archives!: string;
  private readonly retainedLines: string[] = [];

  constructor(private readonly database: string) {}

  /**
   * Starts the trail, logs the rows `logRows` logs, seals them and retires the month into
   * `archives`; throws unless retention exits 0 having retired it.
   */
  async start(logRows: () => Promise<void>): Promise<void> {
    await this.open();
    await logRows();
    await this.app.get(AuditSealer).sealNow();
    const out: string[] = [];
    const code = await runRetention(
      ['--url', this.url(), '--signing-key', join(this.dir, 'seal.key'), '--months', '1', '--archive-dir', this.archives],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? this.retainedLines.push(line) : out.push(line)),
      },
    );
    if (code !== 0 || out.filter((line) => line.startsWith(`RETIRED ${this.month}`)).length !== 1) {
      throw new Error(`audit-retention exited ${code} without retiring ${this.month}:\n${out.join('\n')}`);
    }
  }

  /** Starts the trail only: no rows logged, nothing retired, `archives` named but not made ({@link start} begins so). */
  async open(): Promise<void> {
    ({
      dir: this.dir,
      db: this.db,
      app: this.app,
      stderr: this.stderr,
    } = await startArchiveTrail(this.database, 3, this.keys, this.entryKey));
    this.archives = join(this.dir, 'archives');
  }

  /** Closes what {@link start} (or {@link open}) started, whatever part of it did start. */
  stop(): Promise<void> {
    return stopArchiveTrail({ app: this.app, db: this.db, stderr: this.stderr, dir: this.dir });
  }

  /** The trail's database URL. */
  url = (): string => this.db.url(this.database);

  /** Logs a row `k` months back, `hour` hours into that month, about `Nda nda-<k>-<hour>`, by `userId`. */
  log = (k: number, hour: number, userId: string, extra: Record<string, unknown> = {}): Promise<void> =>
    this.app.get(AuditService).log({
      action: 'nda_created',
      entityType: 'Nda',
      entityId: `nda-${k}-${hour}`,
      userId,
      ip: '10.0.0.1',
      occurredAt: new Date(Date.parse(monthsAgo(k).start) + hour * 3_600_000),
      ...extra,
    });

  /** Writes the witness (the seal lines on stderr so far, and retention's lines) and returns its path. */
  witness = (): string => {
    const path = join(this.dir, 'witness.log');
    writeFileSync(path, witnessText(this.stderr) + this.retainedLines.map((line) => `${line}\n`).join(''));
    return path;
  };

  /** The month's seals file in `where` (the archive directory or a copy of it). */
  sealsOf = (where: string): string => join(where, `audit-${this.month}.seals.json`);

  /** The month's rows file in `where`. */
  rowsOf = (where: string): string => join(where, `audit-${this.month}.ndjson.gz`);

  /** The month's rows file in `where`, inflated. */
  rowsText = (where: string): string => gunzipSync(readFileSync(this.rowsOf(where))).toString('utf8');

  /** The month's rows in `where`, each as its 17 fields. */
  archiveRows = (where: string): (string | null)[][] =>
    this.rowsText(where)
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as (string | null)[]);

  /**
   * A copy of the archive directory in `<dir>/<name>`, its month's rows (`rows`) and seals file
   * (`seals`) changed by hand as given; returns the copy's path.
   */
  tampered = (
    name: string,
    change: { rows?: (rows: (string | null)[][]) => void; seals?: (header: Record<string, unknown>) => void },
  ): string => {
    const target = join(this.dir, name);
    cpSync(this.archives, target, { recursive: true });
    if (change.rows) {
      const rows = this.archiveRows(target);
      change.rows(rows);
      writeFileSync(this.rowsOf(target), gzipSync(rows.map((row) => `${JSON.stringify(row)}\n`).join('')));
    }
    if (change.seals) {
      const header = JSON.parse(readFileSync(this.sealsOf(target), 'utf8')) as Record<string, unknown>;
      change.seals(header);
      writeFileSync(this.sealsOf(target), JSON.stringify(header));
    }
    return target;
  };

  /** `audit-verify --archive` of the month's pair in `where`, with the witness, the public key and the entry key. */
  verifyArchive = (where: string): ReturnType<typeof verify> => this.verifySeals(this.sealsOf(where));

  /** `audit-verify --archive` of the seals file at `sealsPath`, as {@link verifyArchive}. */
  verifySeals = (sealsPath: string): ReturnType<typeof verify> =>
    verify(
      '',
      '--archive',
      sealsPath,
      '--witness',
      this.witness(),
      '--public-key',
      join(this.dir, 'seal.pub'),
      '--entry-key',
      this.entryKey,
    );

  /** `audit-erase --by dpo --archive-dir <archives>` with `args`, signing with the entry key; `url` and `files` when given. */
  erase = async (
    args: string[],
    { url = this.url(), files }: { url?: string; files?: (dir: string, timeoutMs: number) => ArchiveFiles } = {},
  ): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runErase(
      ['--url', url, '--by', 'dpo', '--archive-dir', this.archives, ...args],
      { AUDIT_INTEGRITY_ENTRY_KEY: this.entryKey },
      { out: (line) => out.push(line), err: (line) => err.push(line) },
      files,
    );
    return { code, out, err };
  };
}
